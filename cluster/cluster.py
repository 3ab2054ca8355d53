"""This node's membership of the cluster: registry, consultation ownership, presence.

Keys (all under `prefix`, each with an expiry renewed by this node's heartbeat):
  {prefix}:node:{node id}         this node's NodeInfo (JSON)
  {prefix}:owner:{consultation}   the id of the node that owns a live consultation
  {prefix}:presence:{consultation} what the owner says about it (JSON), for day lists

A node that dies stops renewing: its keys expire after `ttl`, and the next node that
claims one of its consultations gets it (SET NX PX is atomic, so only one does).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import ClusterUnavailable, NodeDraining
from .node import NodeInfo
from .probe import TIMEOUT_S, where

logger = logging.getLogger(__name__)

# renew a claim while it names us, take it again if it vanished (Redis restarted):
# only a claim another node took is lost
_RENEW: Final = """
local owner = redis.call('get', KEYS[1])
if owner == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not owner then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""
# delete a key only while it still names us (a taken-over claim is not ours any more)
_RELEASE: Final = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class Cluster:
    """Create with `await Cluster.join(...)`, finish with `await cluster.leave()`."""

    def __init__(self, client: aioredis.Redis, node: NodeInfo, *, ttl: float, heartbeat: float,
                 prefix: str, on_lost: Callable[[str], None] | None = None,
                 live: Callable[[], dict[str, dict[str, Any]]] | None = None) -> None:
        """Wrap a connected client; use Cluster.join() rather than calling this."""
        if not 0 < heartbeat * 2 <= ttl:
            raise ValueError(f"heartbeat ({heartbeat}s) must be at most half the ttl ({ttl}s)")
        self._client = client
        self._node = node
        self._ttl_ms = int(ttl * 1000)
        self._heartbeat = heartbeat
        self._prefix = prefix
        self._on_lost = on_lost
        self._live = live
        self._owned: set[str] = set()
        self._presence: dict[str, str] = {}
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        # a heartbeat's renewal re-creates a claim that vanished: one released while the
        # renewal was in flight would come back, so a release waits for the heartbeat
        self._renewing = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._leaving = False
        self._draining = False
        self._last_beat = time.monotonic()

    @classmethod
    async def join(cls, url: str, node: NodeInfo, *, ttl: float = 10.0, heartbeat: float = 3.0,
                   prefix: str = "teleconsult", on_lost: Callable[[str], None] | None = None,
                   live: Callable[[], dict[str, dict[str, Any]]] | None = None) -> Cluster:
        """Connect, register this node and start its heartbeat; ClusterUnavailable if Redis is unreachable.

        `on_lost(consultation_id)` is called when a claim of ours expired and was lost.
        `live()`, asked at each heartbeat, gives the consultations this node serves and what
        to publish about each: their number is the node's load, and the rest replaces
        what was published before (see publish()).
        """
        client = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=TIMEOUT_S,
                                   socket_timeout=TIMEOUT_S)
        try:
            cluster = cls(client, node, ttl=ttl, heartbeat=heartbeat, prefix=prefix, on_lost=on_lost, live=live)
            await cluster.beat()
        except RedisError as exc:
            await client.aclose()
            raise ClusterUnavailable(f"cannot use Redis at {where(url)}: {exc}") from exc
        except BaseException:
            await client.aclose()
            raise
        cluster._task = asyncio.create_task(cluster._beat_forever(), name=f"cluster-heartbeat-{node.node_id}")
        logger.info("Node %s joined the cluster", node.node_id)
        return cluster

    @property
    def node_id(self) -> str:
        return self._node.node_id

    def _key(self, kind: str, name: str) -> str:
        return f"{self._prefix}:{kind}:{name}"

    # heartbeat

    async def beat(self) -> None:
        """Renew this node's entry, its claims and its presence records (the heartbeat does this)."""
        async with self._renewing:
            await self._beat()

    async def _beat(self) -> None:
        gone: list[str] = []
        if self._live is not None:
            live = {c: json.dumps({**status, "node": self.node_id}) for c, status in self._live().items()}
            gone = [c for c in self._presence if c not in live]
            self._presence = live
            self.set_load(len(live))
        owned = sorted(self._owned)
        async with self._client.pipeline(transaction=False) as pipe:
            for consultation_id in gone:
                pipe.delete(self._key("presence", consultation_id))
            if not self._draining:  # a draining node has left the registry
                pipe.set(self._key("node", self.node_id), self._node.to_json(), px=self._ttl_ms)
            for consultation_id in owned:
                await self._renew(keys=[self._key("owner", consultation_id)],
                                  args=[self.node_id, self._ttl_ms], client=pipe)
            for consultation_id, value in self._presence.items():
                pipe.set(self._key("presence", consultation_id), value, px=self._ttl_ms)
            results = await pipe.execute()
        self._last_beat = time.monotonic()
        first = len(gone) + (0 if self._draining else 1)
        renewals = results[first:first + len(owned)]
        for consultation_id, renewed in zip(owned, renewals, strict=True):
            if not renewed:
                self._lose(consultation_id)

    def _lose(self, consultation_id: str) -> None:
        if consultation_id not in self._owned:
            return
        self._owned.discard(consultation_id)
        self._presence.pop(consultation_id, None)
        logger.warning("Node %s lost Consultation(%s) to another node", self.node_id, consultation_id)
        if self._on_lost is not None:
            self._on_lost(consultation_id)

    async def _beat_forever(self) -> None:
        while not self._leaving:
            await asyncio.sleep(self._heartbeat)
            if self._leaving:
                return
            try:
                await self.beat()
            except RedisError as exc:
                logger.warning("Node %s heartbeat failed: %s", self.node_id, exc)
                # past the ttl our claims may belong to another node: stop acting as their owner
                if time.monotonic() - self._last_beat > self._ttl_ms / 1000:
                    for consultation_id in sorted(self._owned):
                        self._lose(consultation_id)

    def set_load(self, load: int) -> None:
        """What this node reports as its load from the next heartbeat on."""
        self._node = NodeInfo(self._node.node_id, self._node.base_url, self._node.media_addresses, load)

    async def nodes(self) -> list[NodeInfo]:
        """Every live node (those whose heartbeat has not expired), by id."""
        keys = [key async for key in self._client.scan_iter(match=self._key("node", "*"), count=200)]
        values = await self._client.mget(keys) if keys else []
        return sorted((NodeInfo.from_json(str(v)) for v in values if v is not None), key=lambda n: n.node_id)

    # consultation ownership

    async def claim(self, consultation_id: str) -> str:
        """Claim a live consultation; return its owner's node id (ours if we got it or had it).

        NodeDraining when this node is stopping and would have to take it (nobody else has it).
        """
        key = self._key("owner", consultation_id)
        if self._draining:
            current = await self.owner(consultation_id)
            if current is None or current == self.node_id:
                raise NodeDraining(f"node {self.node_id} is stopping")
            return current
        for _ in range(3):  # the owner's claim may expire between our SET and GET
            if await self._client.set(key, self.node_id, nx=True, px=self._ttl_ms):
                self._owned.add(consultation_id)
                logger.info("Node %s owns Consultation(%s)", self.node_id, consultation_id)
                return self.node_id
            owner = await self._client.get(key)
            if owner == self.node_id:
                self._owned.add(consultation_id)
                return self.node_id
            if owner is not None:
                return str(owner)
        raise ClusterUnavailable(f"Consultation({consultation_id}) ownership keeps changing")

    async def owner(self, consultation_id: str) -> str | None:
        """The node that owns a consultation, or None if no live node does."""
        owner = await self._client.get(self._key("owner", consultation_id))
        return None if owner is None else str(owner)

    def owns(self, consultation_id: str) -> bool:
        return consultation_id in self._owned

    async def release(self, consultation_id: str) -> None:
        """Give up a consultation we own (the call ended, or we are draining); no-op otherwise."""
        async with self._renewing:
            self._owned.discard(consultation_id)
            await self.withdraw(consultation_id)
            await self._release(keys=[self._key("owner", consultation_id)], args=[self.node_id])

    # presence: what the day lists of other nodes show

    async def publish(self, consultation_id: str, status: dict[str, Any]) -> None:
        """Tell every node how a consultation we own is doing (kept while we renew it)."""
        value = json.dumps({**status, "node": self.node_id})
        self._presence[consultation_id] = value
        await self._client.set(self._key("presence", consultation_id), value, px=self._ttl_ms)

    async def withdraw(self, consultation_id: str) -> None:
        """Remove what we published about a consultation."""
        if self._presence.pop(consultation_id, None) is not None:
            await self._client.delete(self._key("presence", consultation_id))

    async def presence(self, consultation_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """What the owners published about these consultations (those with a live owner)."""
        ids = list(consultation_ids)
        if not ids:
            return {}
        values = await self._client.mget([self._key("presence", c) for c in ids])
        return {c: json.loads(v) for c, v in zip(ids, values, strict=True) if v is not None}

    # leaving

    @property
    def draining(self) -> bool:
        return self._draining

    async def drain(self) -> None:
        """Stop taking consultations: leave the registry and claim nothing more (a clean stop begins).

        What we own stays ours until release() (its last socket closed) or leave().
        """
        self._draining = True
        try:
            await self._client.delete(self._key("node", self.node_id))
        except RedisError as exc:  # our entry expires by itself
            logger.warning("Node %s could not leave the registry: %s", self.node_id, exc)
        logger.info("Node %s is draining", self.node_id)

    async def leave(self) -> None:
        """Stop the heartbeat, hand back every claim and leave the registry (a clean stop)."""
        self._leaving = True
        if self._task is not None:
            # redis-py may turn a cancellation that lands inside a command into a connection
            # error, which the loop survives: the flag ends it at its next turn in any case
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=self._heartbeat + 2 * TIMEOUT_S)
            if not self._task.done():
                logger.warning("Node %s heartbeat did not stop", self.node_id)
            self._task = None
        try:
            for consultation_id in sorted(self._owned):
                await self.release(consultation_id)
            await self._client.delete(self._key("node", self.node_id))
        except RedisError as exc:  # our keys expire by themselves
            logger.warning("Node %s could not leave cleanly: %s", self.node_id, exc)
        finally:
            await self._client.aclose()
        logger.info("Node %s left the cluster", self.node_id)
