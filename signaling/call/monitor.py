"""Media statistics for the operator (/stats, /metrics) and quality for each browser."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from clinic import Role
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
        self._networks = [ipaddress.ip_network(n, strict=False) for n in config.allowed_networks]
        self._previous: dict[str, tuple[float, dict[str, Any]]] = {}
        self._sent: dict[tuple[str, Role], tuple[str, str]] = {}
        self._quality = QualityTracker()
        self.snapshot: dict[str, Any] = {"rooms": [], "collected_at": None, "udp_dropped": {}}

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
        self.snapshot = {"rooms": rooms, "collected_at": time.time(), "udp_dropped": dropped}
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

    def allowed(self, request: web.Request) -> bool:
        try:
            address = ipaddress.ip_address(request.remote or "")
        except ValueError:
            return False
        return any(address in net for net in self._networks)

    def prometheus(self) -> str:
        """The last snapshot in Prometheus' text format."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: Iterable[tuple[dict[str, str], float]]) -> None:
            lines.append(f"# HELP teleconsult_{name} {help_text}")
            lines.append(f"# TYPE teleconsult_{name} {kind}")
            for labels, value in samples:
                text = ",".join(f'{k}="{v}"' for k, v in labels.items())
                lines.append(f"teleconsult_{name}{{{text}}} {value}")

        parts = [(room["id"], p) for room in self.snapshot["rooms"] for p in room["participants"]]
        metric("rooms", "gauge", "Live rooms.", [({}, float(len(self.snapshot["rooms"])))])
        metric("participants", "gauge", "Participants with media.", [({}, float(len(parts)))])
        for direction in ("up", "down"):
            for field, kind, text in (
                ("packets", "counter", "RTP packets"),
                ("bytes", "counter", "media bytes"),
                ("packets_lost", "counter", "RTP packets lost"),
                ("frames", "counter", "frames"),
            ):
                metric(
                    f"{direction}_{field}_total", kind,
                    f"{text} {'received from' if direction == 'up' else 'sent to'} participants.",
                    [({"room": r, "participant": p["id"], "role": p["role"], "source": src}, float(s[field]))
                     for r, p in parts for src, s in p[direction].items()],
                )
        metric("keyframe_requests_total", "counter", "Keyframe requests sent to publishers.",
               [({"room": r, "participant": p["id"], "source": src}, float(s["keyframe_requests_sent"]))
                for r, p in parts for src, s in p["up"].items()])
        metric("nacks_total", "counter", "Packets a subscriber asked to resend.",
               [({"room": r, "participant": p["id"], "source": src}, float(s["nacks_received"]))
                for r, p in parts for src, s in p["down"].items()])
        metric("rtt_seconds", "gauge", "Round-trip time to the participant.",
               [({"room": r, "participant": p["id"]}, p["rtt_ms"] / 1000) for r, p in parts if p["rtt_ms"] is not None])
        metric("loss_ratio", "gauge", "Packet loss over the last interval.",
               [({"room": r, "participant": p["id"]}, float(p["loss"])) for r, p in parts])
        metric("udp_dropped_total", "counter", "Datagrams the media ports dropped, by kind (sfu/udp_guard.py).",
               [({"kind": k}, float(v)) for k, v in self.snapshot.get("udp_dropped", {}).items()])
        return "\n".join(lines) + "\n"
