"""How late this process's event loop runs: the first sign of a media node short of CPU.

Every packet the SFU forwards, every NACK it answers and every feedback it sends
waits for the event loop.  A loop that wakes 50 ms late has held two audio
packets of every call it carries; the browsers conceal the gap.  Nothing else
an operator sees shows it: the process's CPU may be low while the machine's
other processes (a crowded VM, a noisy neighbour) hold the core.

A timer fires every `period` and measures how much later than asked it ran.
The report gives the largest lateness of the last `WINDOW` seconds and
cumulative counts of wakes later than each of `THRESHOLDS_MS` (Prometheus
counters).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

#: a wake later than these counts as late (cumulative counts, one per threshold)
THRESHOLDS_MS = (10, 50, 200)
#: the largest lateness is the largest of the last WINDOW seconds
WINDOW = 10.0


class LoopLag:
    """Watches the running loop's lateness: `start()` in the loop to watch, `stop()`, `report()` any time."""

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self.wakes = 0
        self.late = dict.fromkeys(THRESHOLDS_MS, 0)
        # (when, lateness) of the wakes over the lowest threshold: bounded, a stalled loop wakes rarely
        self._recent: deque[tuple[float, float]] = deque(maxlen=512)
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        if self._timer is None:
            self._arm(asyncio.get_running_loop())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        # time.monotonic(), not loop.time(): uvloop's is cached per iteration, in whole milliseconds
        self._timer = loop.call_later(self.period, self._wake, loop, time.monotonic() + self.period)

    def _wake(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        now = time.monotonic()
        self.record(now, max(0.0, now - due))
        self._arm(loop)

    def record(self, now: float, lateness: float) -> None:
        """One wake, `lateness` seconds after it was due."""
        self.wakes += 1
        ms = lateness * 1000
        for threshold in THRESHOLDS_MS:
            if ms > threshold:
                self.late[threshold] += 1
        if ms > THRESHOLDS_MS[0]:
            self._recent.append((now, lateness))

    def late_wakes(self, since: float) -> list[tuple[float, float]]:
        """(when, lateness in s) of the wakes later than the lowest threshold since `since` (time.monotonic();
        the last 512 at most, and none older than WINDOW s before the last report())."""
        return [(when, lateness) for when, lateness in self._recent if when >= since]

    def report(self, now: float | None = None) -> dict[str, Any]:
        """{"max_ms": largest lateness of the last WINDOW s (0 under the lowest threshold), "wakes": n,
        "late": {"10": n, "50": n, "200": n}} (JSON keys: the thresholds in ms)."""
        now = time.monotonic() if now is None else now
        while self._recent and self._recent[0][0] < now - WINDOW:
            self._recent.popleft()
        worst = max((lateness for _, lateness in self._recent), default=0.0)
        return {"max_ms": round(worst * 1000, 1), "wakes": self.wakes,
                "late": {str(t): n for t, n in self.late.items()}}
