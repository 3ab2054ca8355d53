"""glibc's malloc thresholds stay where the server pins them (issue 17 item 9: RSS growth under churn)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from signaling.allocator import pin_malloc_thresholds

# In a fresh interpreter: free one 4 MiB block (glibc maps it on its own, then raises its
# thresholds to 4 MiB), then allocate four 512 KiB blocks and print how much of them glibc
# mapped on their own (mallinfo2's hblkhd) rather than carved out of the heap.
PROBE = textwrap.dedent("""
    import ctypes, sys
    from signaling.allocator import pin_malloc_thresholds

    class MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                    "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    if sys.argv[1] == "pinned":
        assert pin_malloc_thresholds()
    libc.free(libc.malloc(4 << 20))
    before = libc.mallinfo2().hblkhd
    blocks = [libc.malloc(512 << 10) for _ in range(4)]
    print(libc.mallinfo2().hblkhd - before)
    for b in blocks:
        libc.free(b)
""")


def mapped_after_a_large_free(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, timeout=60, check=True)
    return int(out.stdout.strip())


def test_large_blocks_stay_mapped_on_their_own_once_thresholds_are_pinned() -> None:
    # glibc's own behaviour, the cause: after one large free, 512 KiB blocks come from the heap
    assert mapped_after_a_large_free("default") == 0
    # pinned (as `teleconsult serve` does): they are still mapped, and unmapped when freed
    assert mapped_after_a_large_free("pinned") >= 4 * (512 << 10)


def test_thresholds_out_of_glibc_range_are_refused() -> None:
    with pytest.raises(ValueError):
        pin_malloc_thresholds(mmap_threshold=64 << 20)
    with pytest.raises(ValueError):
        pin_malloc_thresholds(trim_threshold=0)
