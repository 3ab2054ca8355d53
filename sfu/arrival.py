"""When a datagram reached this host: the kernel's receive timestamp, not when Python got to it.

Transport-wide feedback (sfu/twcc.py) tells each publisher when its packets
arrived, and the browser's congestion control reads a growing delay between
them as a queue on the network.  Stamped when the event loop got to each
datagram, a busy server looks like a full link: a 100 ms stall, then the
datagrams that waited in the socket read in one burst, and the browser cut
its estimate from 850 to 116 kbit/s and its camera's target to 30 kbit/s,
on a loopback link (tests/e2e/test_resilience.py under CPU load).

Once a socket asked for it (a first SIOCGSTAMPNS, which also turns the
kernel's stamping on), the kernel stamps each datagram as it arrives and
SIOCGSTAMPNS reads the stamp of the last datagram read from the socket:
asked inside the datagram's callback, it is this one's.  (Not with
SO_TIMESTAMPNS set: the stamp then goes only to recvmsg's ancillary data,
which asyncio's datagram transports do not read.)
It costs one system call (~0.9 µs here), so only datagrams that carry a
transport-wide sequence number ask for it.  The clock is the wall clock
(CLOCK_REALTIME), as is the fallback where the kernel has no stamp: one
transport's arrivals are always on one clock.
"""

from __future__ import annotations

import fcntl
import struct
import time
from collections.abc import Callable
from typing import Any, Final

SIOCGSTAMPNS: Final = 0x8907  # linux/sockios.h: the last datagram's receive time (struct timespec)
_TIMESPEC: Final = struct.Struct("@qq")
_BUFFER: Final = bytes(_TIMESPEC.size)


def wall_clock() -> float:
    """Now (s), on the clock the kernel stamps datagrams with: for sockets without stamps."""
    return time.time()


def stamps(sock: Any) -> Callable[[], float]:
    """Have the kernel stamp `sock`'s datagrams; return what gives the last one's arrival (s, wall clock).

    `sock` is a socket or anything with fileno() (uvloop's pseudo-socket).
    Where stamps are not available the function gives the current time.
    """
    try:
        fd = int(sock.fileno())
    except (AttributeError, ValueError, OSError):
        return wall_clock
    ioctl, unpack = fcntl.ioctl, _TIMESPEC.unpack
    try:
        ioctl(fd, SIOCGSTAMPNS, _BUFFER)  # turns stamping on (nothing read yet: ENOENT)
    except OSError:
        pass

    def arrival() -> float:
        try:
            seconds, nanoseconds = unpack(ioctl(fd, SIOCGSTAMPNS, _BUFFER))
        except OSError:  # nothing read yet, or the socket closed under us
            return time.time()
        return float(seconds + nanoseconds * 1e-9)

    return arrival
