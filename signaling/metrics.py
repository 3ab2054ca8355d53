"""Prometheus metrics for the operator's listener (prometheus-client, one registry per app).

Process CPU, memory and garbage collection come from prometheus-client's own
collectors; media figures from the Monitor's snapshots.  Labels are the room
(the consultation id, which an operator may need to find a bad call), the
side ("practitioner"/"patient") and the source: never a name, an email, a
date of birth or a token, and no per-connection id (unbounded series).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, GCCollector, Histogram, PlatformCollector, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

# RTP clock rates, to turn jitter from timestamp units into seconds
_CLOCK_RATE = {"audio": 48000, "video": 90000}

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _SnapshotCollector:
    """The last Monitor snapshot as gauges and counters, read at each scrape."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        snapshot = self._metrics.snapshot
        parts = [(room["id"], p) for room in snapshot["rooms"] for p in room["participants"]]
        rooms = GaugeMetricFamily("teleconsult_rooms", "Live rooms.")
        rooms.add_metric([], float(len(snapshot["rooms"])))
        yield rooms
        people = GaugeMetricFamily("teleconsult_participants", "Participants with media.")
        people.add_metric([], float(len(parts)))
        yield people
        for direction, verb in (("up", "received from"), ("down", "sent to")):
            for field, text in (("packets", "RTP packets"), ("bytes", "media bytes"),
                                ("packets_lost", "RTP packets lost"), ("frames", "frames")):
                family = CounterMetricFamily(f"teleconsult_{direction}_{field}", f"{text} {verb} participants.",
                                             labels=["room", "role", "source"])
                for room, p in parts:
                    for source, s in p[direction].items():
                        family.add_metric([room, p["role"], source], float(s[field]))
                yield family
        keyframes = CounterMetricFamily("teleconsult_keyframe_requests", "Keyframe requests sent to publishers.",
                                        labels=["room", "role", "source"])
        nacks = CounterMetricFamily("teleconsult_nacks", "Packets a subscriber asked to resend.",
                                    labels=["room", "role", "source"])
        for room, p in parts:
            for source, s in p["up"].items():
                keyframes.add_metric([room, p["role"], source], float(s["keyframe_requests_sent"]))
            for source, s in p["down"].items():
                nacks.add_metric([room, p["role"], source], float(s["nacks_received"]))
        yield keyframes
        yield nacks
        dropped = CounterMetricFamily("teleconsult_udp_dropped", "Datagrams the media ports dropped, by kind "
                                      "(sfu/udp_guard.py).", labels=["kind"])
        for kind, count in snapshot.get("udp_dropped", {}).items():
            dropped.add_metric([kind], float(count))
        yield dropped
        # how late each process's event loop runs: this one, and each media worker's
        loops = [("main", snapshot["event_loop"])] if "event_loop" in snapshot else []
        loops += [(str(w["worker"]), w["event_loop"]) for w in snapshot.get("workers") or () if "event_loop" in w]
        lag = GaugeMetricFamily("teleconsult_event_loop_lag_max_seconds", "The largest lateness of the event loop "
                                "over the last 10 s, by process (main, or a media worker's number).",
                                labels=["process"])
        late = CounterMetricFamily("teleconsult_event_loop_late_wakes", "Wakes of the event loop later than `over` "
                                   "seconds (a 50-ms-late loop has held two audio packets of each call).",
                                   labels=["process", "over"])
        for process, report in loops:
            lag.add_metric([process], report["max_ms"] / 1000)
            for over, count in report["late"].items():
                late.add_metric([process, str(int(over) / 1000)], float(count))
        yield lag
        yield late
        workers = snapshot.get("workers")
        if workers is not None:  # [sfu] workers > 1: one line per media worker
            rooms_by = GaugeMetricFamily("teleconsult_worker_rooms", "Rooms placed on each media worker.",
                                         labels=["worker"])
            cpu = CounterMetricFamily("teleconsult_worker_cpu_seconds", "CPU time of each media worker process.",
                                      labels=["worker"])
            restarts = CounterMetricFamily("teleconsult_worker_restarts", "Times each media worker was started "
                                           "again after dying.", labels=["worker"])
            for w in workers:
                rooms_by.add_metric([str(w["worker"])], float(w["rooms"]))
                cpu.add_metric([str(w["worker"])], float(w["cpu_seconds"]))
                restarts.add_metric([str(w["worker"])], float(w["restarts"]))
            yield rooms_by
            yield cpu
            yield restarts


class Metrics:
    """One application's registry; `observe` is fed each Monitor snapshot."""

    def __init__(self) -> None:
        # its own registry: two apps in one process (tests) never share series
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.snapshot: dict[str, Any] = {"rooms": []}
        self.registry.register(_SnapshotCollector(self))
        self.rtt = Histogram("teleconsult_rtt_seconds", "Round-trip time to each participant, per collection.",
                             ["role"], registry=self.registry,
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.4, 0.6, 1.0, 2.0))
        self.jitter = Histogram("teleconsult_jitter_seconds", "Jitter of the media each participant sends.",
                                ["role", "kind"], registry=self.registry,
                                buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2))
        self.loss = Histogram("teleconsult_loss_ratio", "Packet loss of each participant over one collection.",
                              ["role"], registry=self.registry,
                              buckets=(0.0, 0.005, 0.01, 0.02, 0.05, 0.08, 0.15, 0.3, 1.0))

    def observe(self, snapshot: dict[str, Any]) -> None:
        self.snapshot = snapshot
        for room in snapshot["rooms"]:
            for p in room["participants"]:
                role = str(p["role"])
                if p.get("rtt_ms") is not None:
                    self.rtt.labels(role).observe(p["rtt_ms"] / 1000)
                if "loss" in p:
                    self.loss.labels(role).observe(float(p["loss"]))
                for s in p["up"].values():
                    rate = _CLOCK_RATE.get(s["kind"])
                    if rate:
                        self.jitter.labels(role, s["kind"]).observe(s["jitter"] / rate)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
