"""UdpGuard: the door every datagram passes before aioice and aiortc see it.

aioice and aiortc trust what reaches the media port: an empty datagram makes
aiortc's DTLS reader fail (`data[0]`) and close the leg, malformed STUN
attributes raise out of the socket callback (a traceback per datagram), and
DTLS or SRTP is accepted from any address.  The guard sorts each datagram by
its first byte (RFC 7983), checks the header of what it claims to be, and
drops what no established leg can use.  Drops are counted per kind (the
operator's metric) and logged at most once per `log_interval` per kind: a
flood costs a counter, not a log line.

Pure logic: the socket side (aioice's protocol) lives in `ice.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

# drop kinds, as counted and exported (teleconsult_udp_dropped_total{kind=...})
EMPTY = "empty"
TOO_LONG = "too-long"
TRUNCATED = "truncated"
WRONG_VERSION = "wrong-version"  # RTP/RTCP version other than 2
UNKNOWN = "unknown"  # none of STUN, DTLS, RTP/RTCP (RFC 7983)
MALFORMED_STUN = "malformed-stun"
MALFORMED_DTLS = "malformed-dtls"
WRONG_SOURCE = "wrong-source"  # DTLS/RTP/RTCP not from the leg's selected pair
FAILED = "failed"  # admitted, then aioice/aiortc raised while handling it
KINDS = (EMPTY, TOO_LONG, TRUNCATED, WRONG_VERSION, UNKNOWN, MALFORMED_STUN, MALFORMED_DTLS, WRONG_SOURCE, FAILED)

STUN, DTLS, RTP, RTCP = "stun", "dtls", "rtp", "rtcp"

_STUN_COOKIE = b"\x21\x12\xa4\x42"
# STUN attributes aioice decodes, with the only value sizes it can decode
# (aioice's unpackers raise struct.error/ValueError on anything else)
_STUN_SIZES: dict[int, tuple[int, ...]] = {
    0x0003: (4,),  # CHANGE-REQUEST
    0x000C: (4,),  # CHANNEL-NUMBER
    0x000D: (4,),  # LIFETIME
    0x0008: (20,),  # MESSAGE-INTEGRITY
    0x0019: (4,),  # REQUESTED-TRANSPORT
    0x0024: (4,),  # PRIORITY
    0x0025: (0,),  # USE-CANDIDATE
    0x8028: (4,),  # FINGERPRINT
    0x8029: (8,),  # ICE-CONTROLLED
    0x802A: (8,),  # ICE-CONTROLLING
}
_STUN_ADDRESSES = (0x0001, 0x0004, 0x0005, 0x0012, 0x0016, 0x0020, 0x802B, 0x802C)
_STUN_TEXT = (0x0006, 0x0014, 0x8022)  # USERNAME, REALM, SOFTWARE: UTF-8
_STUN_ERROR_CODE = 0x0009


def demux(data: bytes) -> str | None:
    """What the first byte says a datagram is (RFC 7983 section 7), or None."""
    b = data[0]
    if b < 4:
        return STUN
    if 19 < b < 64:
        return DTLS
    if 127 < b < 192:
        return RTCP if len(data) > 1 and 191 < data[1] < 224 else RTP
    return None


def well_formed_media(data: bytes, max_size: int) -> bool:
    """Whether `data` is an RTP or RTCP datagram `problem` finds nothing wrong with (the common case,
    checked in one call; anything else goes through `problem`, which says what is wrong)."""
    size = len(data)
    if size < 8 or size > max_size or not 127 < data[0] < 192:
        return False
    if 191 < data[1] < 224:
        return _rtcp_problem(data) is None
    return _rtp_problem(data) is None


def problem(data: bytes, max_size: int) -> tuple[str, str | None]:
    """(protocol, drop kind or None) for one datagram, from its bytes alone."""
    if not data:
        return "", EMPTY
    if len(data) > max_size:
        return "", TOO_LONG
    protocol = demux(data)
    if protocol is None:
        b = data[0]
        return "", WRONG_VERSION if b > 63 else UNKNOWN  # 64-127: version 1, 192-255: version 3
    if protocol == STUN:
        return protocol, _stun_problem(data)
    if protocol == DTLS:
        return protocol, _dtls_problem(data)
    if protocol == RTCP:
        return protocol, _rtcp_problem(data)
    return protocol, _rtp_problem(data)


def _stun_problem(data: bytes) -> str | None:
    # RFC 8489 section 5: 20-byte header, the magic cookie, a body of whole attributes
    if len(data) < 20 or 20 + int.from_bytes(data[2:4], "big") != len(data):
        return TRUNCATED
    if data[4:8] != _STUN_COOKIE or len(data) % 4:
        return MALFORMED_STUN
    pos = 20
    while pos < len(data):
        if pos + 4 > len(data):
            return TRUNCATED
        kind = int.from_bytes(data[pos:pos + 2], "big")
        size = int.from_bytes(data[pos + 2:pos + 4], "big")
        value = data[pos + 4:pos + 4 + size]
        if len(value) < size:
            return TRUNCATED
        if not _stun_attribute_ok(kind, value):
            return MALFORMED_STUN
        pos += 4 + size + (-size % 4)
    return None


def _stun_attribute_ok(kind: int, value: bytes) -> bool:
    sizes = _STUN_SIZES.get(kind)
    if sizes is not None and len(value) not in sizes:
        return False
    if kind in _STUN_ADDRESSES:  # family 1 (IPv4) or 2 (IPv6), then port and address
        return len(value) >= 4 and ((value[1] == 1 and len(value) == 8) or (value[1] == 2 and len(value) == 20))
    if kind in _STUN_TEXT or kind == _STUN_ERROR_CODE:
        if kind == _STUN_ERROR_CODE:
            if len(value) < 4:
                return False
            value = value[4:]
        try:
            value.decode("utf8")
        except UnicodeDecodeError:
            return False
    return True


def _dtls_problem(data: bytes) -> str | None:
    # RFC 9147 4: records with 13-byte headers, back to back; a DTLS 1.3 unified
    # header (first byte 32-63) may follow, and is left to OpenSSL with the rest
    pos = 0
    while pos < len(data) and data[pos] < 32:
        if len(data) - pos < 13:
            return TRUNCATED
        if not 19 < data[pos] < 26 or data[pos + 1] != 0xFE:
            return MALFORMED_DTLS
        pos += 13 + int.from_bytes(data[pos + 11:pos + 13], "big")
    return TRUNCATED if pos > len(data) else None


def _rtp_problem(data: bytes) -> str | None:
    # RFC 3550 5.1: 12 bytes, the CSRCs, then the extension header if X is set
    size = 12 + 4 * (data[0] & 0x0F)
    if len(data) < size:
        return TRUNCATED
    if data[0] & 0x10:
        if len(data) < size + 4:
            return TRUNCATED
        size += 4 + 4 * int.from_bytes(data[size + 2:size + 4], "big")
        if len(data) < size:
            return TRUNCATED
    return None


def _rtcp_problem(data: bytes) -> str | None:
    # RFC 3550 6.4: the first packet of a compound, its length in 32-bit words minus one
    if len(data) < 8 or len(data) < 4 * (int.from_bytes(data[2:4], "big") + 1):
        return TRUNCATED
    return None


class UdpGuard:
    """Admits or drops datagrams for one process's media ports; counts and logs the drops.

    `max_size`: the longest datagram a leg carries (pylibsrtp cannot take more than
    1500 bytes, and browsers keep packets near 1200).  `log_interval`: seconds
    between two log lines of one kind.
    """

    def __init__(self, max_size: int = 1500, log_interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.log_interval = log_interval
        self._clock = clock
        self.dropped: dict[str, int] = dict.fromkeys(KINDS, 0)
        self._logged_at: dict[str, float] = {}
        self._unlogged: dict[str, int] = dict.fromkeys(KINDS, 0)

    def admit(self, data: bytes, from_leg: Callable[[], bool]) -> str | None:
        """What `data` is (STUN, DTLS, RTP, RTCP) if it may go on, else None (dropped).

        `from_leg()` tells whether it came from the leg's pair.  STUN is
        admitted from anywhere (ICE checks come from new addresses); DTLS and
        SRTP/SRTCP only from the pair ICE selected (or, before one is, from one
        of its candidate pairs).
        """
        protocol, kind = problem(data, self.max_size)
        if kind is None and protocol != STUN and not from_leg():
            kind = WRONG_SOURCE
        if kind is not None:
            self.drop(kind)
            return None
        return protocol

    def failed(self, data: bytes, exc: BaseException) -> None:
        """An admitted datagram made aioice/aiortc raise: count it, no traceback."""
        self.drop(MALFORMED_STUN if data and data[0] < 4 else FAILED, type(exc).__name__)

    def drop(self, kind: str, detail: str = "") -> None:
        self.dropped[kind] = self.dropped.get(kind, 0) + 1
        self._unlogged[kind] = self._unlogged.get(kind, 0) + 1
        now = self._clock()
        last = self._logged_at.get(kind)
        if last is not None and now - last < self.log_interval:
            return
        self._logged_at[kind] = now
        count, self._unlogged[kind] = self._unlogged[kind], 0
        logger.warning("udp-%s: %d datagram(s) dropped on the media ports since the last report%s "
                       "(next report of this kind in %.0f s at the earliest)",
                       kind, count, f" ({detail})" if detail else "", self.log_interval)
