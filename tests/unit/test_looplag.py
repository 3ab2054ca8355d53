"""The event loop's lateness (sfu/looplag.py) and how /metrics shows it."""

from __future__ import annotations

import asyncio
import time

from signaling.metrics import Metrics
from sfu.looplag import WINDOW, LoopLag


def test_counts_each_threshold_and_keeps_the_worst_of_the_window() -> None:
    lag = LoopLag()
    for at, ms in ((0.0, 1), (1.0, 12), (2.0, 60), (3.0, 250), (4.0, 30)):
        lag.record(at, ms / 1000)
    report = lag.report(now=4.0)
    assert report["wakes"] == 5
    assert report["late"] == {"10": 4, "50": 2, "200": 1}
    assert report["max_ms"] == 250.0
    # the 250-ms wake leaves the window; the counts stay (Prometheus counters)
    later = lag.report(now=3.0 + WINDOW + 0.5)
    assert later["max_ms"] == 30.0 and later["late"]["200"] == 1
    assert lag.report(now=100.0)["max_ms"] == 0.0


async def test_a_blocked_loop_is_seen_late() -> None:
    lag = LoopLag(period=0.02)
    lag.start()
    try:
        await asyncio.sleep(0.1)
        calm = lag.report()
        time.sleep(0.15)  # a callback that holds the loop, as a crowded core does
        await asyncio.sleep(0.05)
        report = lag.report()
    finally:
        lag.stop()
    assert calm["wakes"] >= 2
    assert report["late"]["50"] >= 1 and report["max_ms"] >= 100


def test_metrics_show_each_process_loop() -> None:
    metrics = Metrics()
    main, worker = LoopLag(), LoopLag()
    main.record(1.0, 0.004)
    worker.record(1.0, 0.120)
    metrics.observe({"rooms": [], "udp_dropped": {}, "event_loop": main.report(now=1.0),
                     "workers": [{"worker": 2, "rooms": 1, "cpu_seconds": 1.5, "restarts": 0,
                                  "event_loop": worker.report(now=1.0)}]})
    text = metrics.exposition().decode()
    assert 'teleconsult_event_loop_lag_max_seconds{process="main"} 0.0' in text
    assert 'teleconsult_event_loop_lag_max_seconds{process="2"} 0.12' in text
    assert 'teleconsult_event_loop_late_wakes_total{over="0.05",process="2"} 1.0' in text
    assert 'teleconsult_event_loop_late_wakes_total{over="0.05",process="main"} 0.0' in text
