"""Media statistics for the operator (/stats, /metrics on the operator listener) and quality for each browser."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from clinic import Role
from sfu.looplag import LoopLag
from sfu.remote import RemoteParticipant
from sfu.stats import participant_stats
from sfu.udp_guard import UdpGuard

from ..background import BackgroundService
from ..config import StatsConfig
from .hub import Hub, HubRegistry
from .quality import QualityTracker

logger = logging.getLogger(__name__)

class Monitor(BackgroundService):
    """Collects every participant's stats each interval, derives rates and quality.

    Pushes {"type": "quality", "self": level, "peer": level} to each browser
    when a level changes.  Keeps the last snapshot for /stats and /metrics.
    """

    def __init__(self, hubs: HubRegistry, config: StatsConfig, udp_guard: UdpGuard | None = None) -> None:
        super().__init__()
        self._hubs = hubs
        self._udp_guard = udp_guard  # its drop counters go out with the snapshot
        self._config = config
        self._previous: dict[str, tuple[float, dict[str, Any]]] = {}
        self._sent: dict[tuple[str, Role], tuple[str, str]] = {}
        self._quality = QualityTracker()
        # called with each new snapshot (the Prometheus histograms)
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        # how late this process's loop runs (the media of the rooms it holds itself waits for it)
        self.loop_lag = LoopLag()
        self.snapshot: dict[str, Any] = {"rooms": [], "collected_at": None, "udp_dropped": {},
                                         "event_loop": self.loop_lag.report()}

    def start(self) -> None:
        super().start()
        self.loop_lag.start()

    async def stop(self) -> None:
        self.loop_lag.stop()
        await super().stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._config.interval)
            try:
                await self.collect()
            except Exception:  # a bad sample must not stop monitoring
                logger.exception("stats collection failed")

    async def collect(self) -> dict[str, Any]:
        now = time.monotonic()
        rooms = []
        seen: set[str] = set()
        for hub in self._hubs.hubs():
            sides: dict[Role, dict[str, Any]] = {}
            for role, participant in list(hub.participants.items()):
                if isinstance(participant, RemoteParticipant):  # asked of its media worker
                    remote = await participant.stats()
                    if remote is None:
                        continue
                    stats = remote
                else:
                    stats = await participant_stats(participant)
                self._add_rates(stats, now)
                seen.add(stats["id"])
                sides[role] = stats
            rooms.append({"id": hub.id, "participants": list(sides.values())})
            await self._push_quality(hub, sides)
        for pid in set(self._previous) - seen:
            del self._previous[pid]
        self._quality.forget(seen)
        dropped = dict(self._udp_guard.dropped) if self._udp_guard is not None else {}
        self.snapshot = {"rooms": rooms, "collected_at": time.time(), "udp_dropped": dropped,
                         "event_loop": self.loop_lag.report()}
        pool = self._hubs.services.workers
        if pool is not None:  # each media worker's load and CPU; its UDP drops add to the total
            workers = await pool.stats()
            for worker in workers:
                for kind, count in worker.pop("udp_dropped", {}).items():
                    dropped[kind] = dropped.get(kind, 0) + count
            self.snapshot["workers"] = workers
        for listener in self.listeners:
            listener(self.snapshot)
        return self.snapshot

    def _add_rates(self, stats: dict[str, Any], now: float) -> None:
        totals = {
            "up_bytes": sum(s["bytes"] for s in stats["up"].values()),
            "down_bytes": sum(s["bytes"] for s in stats["down"].values()),
            "up_packets": sum(s["packets"] for s in stats["up"].values()),
            "up_lost": sum(s["packets_lost"] for s in stats["up"].values()),
        }
        before = self._previous.get(stats["id"])
        self._previous[stats["id"]] = (now, totals)
        up_loss = 0.0
        if before is not None and now > before[0]:
            t0, prev = before
            span = now - t0
            stats["up_kbps"] = round(8 * (totals["up_bytes"] - prev["up_bytes"]) / span / 1000, 1)
            stats["down_kbps"] = round(8 * (totals["down_bytes"] - prev["down_bytes"]) / span / 1000, 1)
            got = totals["up_packets"] - prev["up_packets"]
            lost = totals["up_lost"] - prev["up_lost"]
            up_loss = lost / (got + lost) if got + lost > 0 else 0.0
        down_loss = max((s["fraction_lost"] for s in stats["down"].values()), default=0.0)
        stats["loss"] = round(max(up_loss, down_loss), 4)
        connected = stats["media_state"] == "connected"
        # smoothed, with hysteresis: a steady network shows a steady level
        level = self._quality.update(stats["id"], stats["loss"], stats["rtt_ms"])
        stats["quality"] = level if connected else "poor"

    async def _push_quality(self, hub: Hub, sides: dict[Role, dict[str, Any]]) -> None:
        for role, conn in list(hub.connections.items()):
            other = Role.PATIENT if role is Role.PRACTITIONER else Role.PRACTITIONER
            mine = sides.get(role, {}).get("quality", "unknown")
            theirs = sides.get(other, {}).get("quality", "unknown")
            if self._sent.get((hub.id, role)) != (mine, theirs):
                self._sent[(hub.id, role)] = (mine, theirs)
                await conn.send({"type": "quality", "self": mine, "peer": theirs})
