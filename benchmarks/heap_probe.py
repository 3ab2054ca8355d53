"""What a server process's memory is made of, for memory-growth hunts (served.py's SOAK_DIAG=1).

`HeapProbe.report()` gives: live Python objects by type (after a collection),
glibc's own account (mallinfo2: the brk heap, what is in use and free in it,
what is mapped on its own), resident kB by kind of mapping (/proc/self/smaps)
and, if tracemalloc runs (SOAK_DIAG_TRACE=1), the allocation sites that grew
since the first report.  Issue 17 item 9 was found this way: objects and
traced Python memory flat, the [heap] mapping growing with free space in it.
"""

from __future__ import annotations

import collections
import ctypes
import gc
import os
import threading
import tracemalloc
from typing import Any


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]


def smaps_kb() -> dict[str, int]:
    """Resident kB of this process by kind of mapping: [heap], [anon] (mmaps), [stack], files."""
    out: dict[str, int] = {}
    name = ""
    with open("/proc/self/smaps") as f:
        for line in f:
            p = line.split()
            if "-" in p[0] and not p[0].endswith(":"):
                name = p[5] if len(p) > 5 and p[5].startswith("[") else ("[anon]" if len(p) <= 5 else "files")
            elif p[0] == "Rss:":
                out[name] = out.get(name, 0) + int(p[1])
    return out


def malloc_mb() -> dict[str, float]:
    """glibc's main arena: its size, in use, free inside it; and blocks mapped on their own."""
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = _MallInfo2
    mi = libc.mallinfo2()
    return {"arena_mb": round(mi.arena / 1e6, 2), "in_use_mb": round(mi.uordblks / 1e6, 2),
            "free_mb": round(mi.fordblks / 1e6, 2), "mmap_mb": round(mi.hblkhd / 1e6, 2)}


class HeapProbe:
    def __init__(self, trace: bool, frames: int = 1) -> None:
        self._first: tracemalloc.Snapshot | None = None
        if trace:
            tracemalloc.start(frames)

    def report(self, top: int = 15) -> dict[str, Any]:
        gc.collect()
        counts = collections.Counter(type(o).__name__ for o in gc.get_objects())
        grown: list[str] = []
        if tracemalloc.is_tracing():
            snap = tracemalloc.take_snapshot()
            if self._first is None:
                self._first = snap
            else:
                diffs = snap.compare_to(self._first, os.environ.get("SOAK_DIAG_KEY", "traceback"))
                grown.append(f"total {sum(d.size_diff for d in diffs) / 1024:.0f} KiB")
                grown += [f"{d.size_diff / 1024:.0f} KiB {d.count_diff:+d}: " + " | ".join(d.traceback.format()[-6:])
                          for d in diffs[:top]]
        return {"counts": dict(counts.most_common(300)), "threads": threading.active_count(),
                "malloc": malloc_mb(), "smaps_kb": smaps_kb(),
                "traced_mb": round(tracemalloc.get_traced_memory()[0] / 1e6, 2), "grown": grown}
