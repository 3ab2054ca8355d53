"""Allocator: the C library's malloc settings for a long-running media server.

glibc serves blocks of 128 KiB and more with their own mmap, given back to
the system when freed.  But when such a block is freed it raises that
threshold to the block's size (up to 32 MiB) and its trim threshold to twice
that: from then on the large buffers of each new peer connection (DTLS,
SRTP, codec and socket buffers, lists and bytes of the Python objects
around them) are carved out of the brk heap, between long-lived blocks, and
the heap only grows.  Under churn (participants leaving and joining, media
re-offered) the server's RSS grew by 0.3-0.5 MB per peer connection made,
while no Python object survived and the allocated total stayed flat (issue
17 item 9, benchmarks/soak.py).  Fixed thresholds keep large blocks mapped
on their own and let `free` give the heap's top back.

Measured in two one-hour soaks run side by side on the same box (10 rooms, a
rejoin a minute): with the thresholds pinned RSS stayed within 1 % over 21
minutes of media and churn; without them (and with sfu/egress.py's fixed-slot
history) it crept 1.5 MB a minute (+18 % in 25 minutes).
"""

from __future__ import annotations

import ctypes
import logging

logger = logging.getLogger(__name__)

# mallopt(3) parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's own starting value for both: what it would keep without the dynamic raise
DEFAULT_THRESHOLD = 128 * 1024


def pin_malloc_thresholds(mmap_threshold: int = DEFAULT_THRESHOLD, trim_threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Fix glibc's mmap and trim thresholds (no dynamic raise); False where that cannot be done.

    Process-wide: call it once, at start, before the app allocates much.
    Another C library (musl) or one without `mallopt` is left alone.
    """
    if not (0 < mmap_threshold <= 32 * 1024 * 1024 and trim_threshold > 0):
        raise ValueError(f"malloc thresholds out of range: mmap {mmap_threshold}, trim {trim_threshold}")
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; musl's is a stub returning 0
    done = bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1)
    if not done:
        logger.info("malloc thresholds left as they are (not glibc)")
    return done
