"""Nodes coordinating through a real redis-server: registry, ownership, takeover, presence."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.databases import RedisServer, free_port

from cluster import Cluster, ClusterUnavailable, NodeDraining, NodeInfo

TTL = 0.6
BEAT = 0.2
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prefix() -> str:
    """Each test's keys apart from the others' on the shared server."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
async def join(redis_server: RedisServer, prefix: str) -> AsyncIterator[Callable[..., Awaitable[Cluster]]]:
    joined: list[Cluster] = []

    async def make(node_id: str, **kwargs: Any) -> Cluster:
        node = NodeInfo(node_id, f"https://{node_id}.example", ("127.0.0.1",))
        cluster = await Cluster.join(redis_server.url, node, ttl=TTL, heartbeat=BEAT, prefix=prefix, **kwargs)
        joined.append(cluster)
        return cluster

    yield make
    for cluster in joined:
        await cluster.leave()


async def eventually(check: Callable[[], Awaitable[bool]], tries: int = 50) -> bool:
    """Poll `check` every 0.1 s, at most `tries` times."""
    for _ in range(tries):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def test_nodes_see_each_other_and_their_load(join: Callable[..., Awaitable[Cluster]]) -> None:
    a = await join("a")
    b = await join("b")
    assert [n.node_id for n in await b.nodes()] == ["a", "b"]
    assert (await a.nodes())[1] == NodeInfo("b", "https://b.example", ("127.0.0.1",), 0)
    a.set_load(3)

    async def a_reports_3() -> bool:
        return (await b.nodes())[0].load == 3

    assert await eventually(a_reports_3)
    await a.leave()  # a clean stop leaves the registry at once
    assert [n.node_id for n in await b.nodes()] == ["b"]


async def test_one_node_wins_a_consultation_claimed_by_all_at_once(join: Callable[..., Awaitable[Cluster]]) -> None:
    nodes = [await join(name) for name in ("a", "b", "c")]
    owners = await asyncio.gather(*(n.claim("consultation-1") for n in nodes for _ in range(3)))
    assert len(set(owners)) == 1
    (winner,) = [n for n in nodes if n.node_id == owners[0]]
    assert [n.owns("consultation-1") for n in nodes].count(True) == 1 and winner.owns("consultation-1")
    # the heartbeat keeps the claim alive well past its ttl
    await asyncio.sleep(3 * TTL)
    assert await nodes[0].owner("consultation-1") == winner.node_id
    # only the owner can hand it back
    others = [n for n in nodes if n is not winner]
    await others[0].release("consultation-1")
    assert await others[1].claim("consultation-1") == winner.node_id
    await winner.release("consultation-1")
    assert await others[1].claim("consultation-1") == others[1].node_id


_NODE = """
import asyncio, sys
from cluster import Cluster, NodeInfo

async def main() -> None:
    node = await Cluster.join(sys.argv[1], NodeInfo("killed", "https://killed.example"),
                              ttl=float(sys.argv[3]), heartbeat=float(sys.argv[4]), prefix=sys.argv[2])
    print(await node.claim("consultation-1"), flush=True)
    await node.publish("consultation-1", {"status": "in-call"})
    print("published", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_owners_consultation_is_taken_over_after_its_ttl(
    redis_server: RedisServer, prefix: str, join: Callable[..., Awaitable[Cluster]], capsys: pytest.CaptureFixture[str]
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _NODE, redis_server.url, prefix, str(TTL), str(BEAT),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        assert process.stdout is not None
        assert (await asyncio.wait_for(process.stdout.readline(), 20)).strip() == b"killed"
        assert (await asyncio.wait_for(process.stdout.readline(), 20)).strip() == b"published"
        survivor = await join("survivor")
        assert await survivor.claim("consultation-1") == "killed"
        assert (await survivor.presence(["consultation-1", "other"])) == {
            "consultation-1": {"status": "in-call", "node": "killed"}}
        await asyncio.sleep(2 * TTL)
        assert await survivor.claim("consultation-1") == "killed"  # alive: its heartbeat renews
    finally:
        os.kill(process.pid, signal.SIGKILL)
        await process.wait()
    killed_at = time.monotonic()

    async def taken_over() -> bool:
        return await survivor.claim("consultation-1") == "survivor"

    assert await eventually(taken_over)
    with capsys.disabled():
        print(f"\ntakeover {time.monotonic() - killed_at:.2f} s after SIGKILL (ttl {TTL} s)")
    assert [n.node_id for n in await survivor.nodes()] == ["survivor"]
    assert await survivor.presence(["consultation-1"]) == {}


async def test_a_node_whose_claim_was_taken_is_told(join: Callable[..., Awaitable[Cluster]],
                                                    redis_server: RedisServer, prefix: str) -> None:
    lost: list[str] = []
    a = await join("a", on_lost=lost.append)
    await a.claim("consultation-1")
    # as if a's claim had expired during a pause (e.g. a network split) and b had taken it
    b = await join("b")
    await b.release("consultation-1")  # not b's: no effect
    assert await b.owner("consultation-1") == "a"
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    try:
        await client.set(f"{prefix}:owner:consultation-1", "b")
    finally:
        await client.aclose()
    await a.beat()
    assert lost == ["consultation-1"] and not a.owns("consultation-1")


async def test_an_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    url = f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(ClusterUnavailable, match=r"cannot use Redis at 127\.0\.0\.1:\d+") as caught:
        await Cluster.join(url, NodeInfo("a", "https://a.example"))
    assert "s3cret-pw" not in str(caught.value)


async def test_the_heartbeat_must_fit_in_the_ttl(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match="half the ttl"):
        await Cluster.join(redis_server.url, NodeInfo("a", "https://a.example"), ttl=1.0, heartbeat=0.8)


async def test_claims_and_presence_come_back_after_redis_forgot_them(
    join: Callable[..., Awaitable[Cluster]], redis_server: RedisServer, prefix: str
) -> None:
    serving = {"consultation-1": {"status": "waiting-room"}, "consultation-2": {"status": "in-call"}}
    a = await join("a", live=lambda: dict(serving))
    b = await join("b")
    await a.claim("consultation-1")
    await a.beat()
    assert (await b.nodes())[0].load == 2
    assert await b.presence(["consultation-1", "consultation-2"]) == {
        "consultation-1": {"status": "waiting-room", "node": "a"}, "consultation-2": {"status": "in-call", "node": "a"}}
    import redis.asyncio as aioredis

    client = aioredis.from_url(redis_server.url)
    try:  # as if Redis had restarted empty
        await client.delete(*[key async for key in client.scan_iter(match=f"{prefix}:*")])
    finally:
        await client.aclose()
    del serving["consultation-2"]
    await a.beat()
    await b.beat()
    assert a.owns("consultation-1") and await b.claim("consultation-1") == "a"
    assert await b.presence(["consultation-1", "consultation-2"]) == {
        "consultation-1": {"status": "waiting-room", "node": "a"}}
    assert [n.load for n in await b.nodes()] == [1, 0]


async def test_leaving_ends_a_heartbeat_that_swallowed_its_cancellation(
    redis_server: RedisServer, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """redis-py can turn a cancellation that lands inside a command into a connection error."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    node = await Cluster.join(redis_server.url, NodeInfo("a", "https://a.example"), ttl=TTL, heartbeat=BEAT,
                              prefix=prefix)
    beats = 0
    inside = asyncio.Event()

    async def slow_beat() -> None:
        nonlocal beats
        beats += 1
        inside.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RedisConnectionError("Connection closed by server.") from None

    monkeypatch.setattr(node, "beat", slow_beat)
    await asyncio.wait_for(inside.wait(), 5)
    await asyncio.wait_for(node.leave(), 10)  # hung for ever before: the loop went on beating
    assert beats == 1
    # the node left the registry although its heartbeat was stuck
    other = await Cluster.join(redis_server.url, NodeInfo("b", "https://b.example"), ttl=TTL, heartbeat=BEAT,
                              prefix=prefix)
    try:
        assert [n.node_id for n in await other.nodes()] == ["b"]
    finally:
        await other.leave()


async def test_a_draining_node_leaves_the_registry_claims_nothing_new_and_hands_over_what_it_releases(
    join: Callable[..., Awaitable[Cluster]]
) -> None:
    a = await join("a")
    b = await join("b")
    assert await a.claim("kept") == "a"
    await a.drain()
    assert a.draining
    assert [n.node_id for n in await b.nodes()] == ["b"]
    await asyncio.sleep(3 * BEAT)  # its heartbeat goes on renewing its claims, not its entry
    assert [n.node_id for n in await b.nodes()] == ["b"]
    assert await b.owner("kept") == "a"
    # nobody has it: a draining node refuses to take it; another node's stays theirs
    with pytest.raises(NodeDraining):
        await a.claim("new")
    with pytest.raises(NodeDraining):
        await a.claim("kept")
    assert await b.claim("other") == "b"
    assert await a.claim("other") == "b"
    # once released (its last socket closed), the next node takes it at once
    await a.release("kept")
    assert await b.claim("kept") == "b"


async def test_a_release_during_a_heartbeat_is_not_undone_by_it(join: Callable[..., Awaitable[Cluster]]) -> None:
    """The heartbeat's renewal re-creates a vanished claim (Redis restarted): not one released meanwhile."""
    a = await join("a")
    b = await join("b")
    for round_ in range(20):
        consultation = f"c{round_}"
        assert await a.claim(consultation) == "a"
        # the heartbeat snapshots a's claims, then waits on Redis while the release runs
        await asyncio.gather(a.beat(), a.release(consultation))
        assert not a.owns(consultation)
        assert await b.owner(consultation) is None, f"round {round_}: the heartbeat took the claim back"
        assert await b.claim(consultation) == "b"
