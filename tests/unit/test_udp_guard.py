"""UdpGuard: which datagrams reach aioice/aiortc, what is counted and how often it is logged."""

from __future__ import annotations

import logging
import struct

import pytest
from aioice import stun

from sfu import udp_guard
from sfu.udp_guard import UdpGuard


def binding(**attributes: object) -> bytes:
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    message.attributes.update(attributes)
    return bytes(message)


def stun_with(kind: int, value: bytes) -> bytes:
    body = struct.pack("!HH", kind, len(value)) + value + bytes(-len(value) % 4)
    return struct.pack("!HHI12s", 1, len(body), 0x2112A442, bytes(12)) + body


RTP = bytes([0x80, 96]) + bytes(10) + bytes(100)
RTCP_RR = bytes([0x81, 201, 0, 7]) + bytes(28) + bytes(14)  # one report block + SRTCP trailer
DTLS = bytes([22, 0xFE, 0xFD]) + bytes(8) + struct.pack("!H", 3) + b"abc"


@pytest.mark.parametrize(("data", "kind"), [
    (b"", "empty"),
    (RTP + bytes(1500), "too-long"),
    (binding(USERNAME="a:b", PRIORITY=1, **{"USE-CANDIDATE": None}), None),
    (binding()[:19], "truncated"),
    (binding() + bytes(4), "truncated"),  # longer than its length field says
    (binding()[:4] + b"\x00\x00\x00\x00" + binding()[8:], "malformed-stun"),  # no magic cookie
    (stun_with(0x0024, b"\x00\x01"), "malformed-stun"),  # PRIORITY of 2 bytes: struct.error in aioice
    (stun_with(0x0020, b"\x00\x09\x00\x01abcd"), "malformed-stun"),  # address family 9
    (stun_with(0x0006, b"\xff\xfe"), "malformed-stun"),  # USERNAME not UTF-8
    (stun_with(0x0009, b"\x00"), "malformed-stun"),  # ERROR-CODE too short
    (stun_with(0x1234, b"anything"), None),  # unknown attributes are ignored by aioice
    (struct.pack("!HHI12s", 1, 8, 0x2112A442, bytes(12)) + struct.pack("!HH", 0x24, 40) + bytes(4), "truncated"),
    (DTLS, None),
    (DTLS[:12], "truncated"),
    (DTLS[:-1], "truncated"),
    (bytes([22, 0x03, 0x03]) + DTLS[3:], "malformed-dtls"),
    (DTLS + bytes([5]) + DTLS[1:], "malformed-dtls"),
    (DTLS + bytes([0x2C, 0x12, 0x34]) + bytes(30), None),  # then a DTLS 1.3 unified-header record
    (bytes([0x2C]) + bytes(3), None),
    (RTP, None),
    (RTP[:11], "truncated"),
    (bytes([0x83]) + RTP[1:16], "truncated"),  # three CSRCs announced
    (bytes([0x90]) + RTP[1:12] + b"\xbe\xde\x00\x09" + bytes(8), "truncated"),  # extension longer than the packet
    (RTCP_RR, None),
    (RTCP_RR[:7], "truncated"),
    (bytes([0x81, 201, 0, 200]) + bytes(40), "truncated"),
    (bytes([0xC0]) + RTP[1:], "wrong-version"),
    (bytes([0x40]) + RTP[1:], "wrong-version"),
    (bytes([0x10]) + RTP[1:], "unknown"),
])
def test_each_datagram_is_admitted_or_dropped_for_a_reason(data: bytes, kind: str | None) -> None:
    guard = UdpGuard()
    assert (guard.admit(data, lambda: True) is None) is (kind is not None)
    assert {k for k, v in guard.dropped.items() if v} == ({kind} if kind else set())


def test_the_media_shortcut_admits_exactly_the_rtp_and_rtcp_the_guard_admits() -> None:
    # sfu/ice.py skips `admit` for the selected pair's media when `well_formed_media` says yes:
    # it must never let through what `admit` drops, nor send the guard media it would take
    import random

    rng = random.Random(17)
    samples = [RTP, RTCP_RR, DTLS, binding(), RTP[:11], bytes([0x83]) + RTP[1:16], RTP + bytes(1500), b"", b"\x80"]
    for _ in range(20000):
        base = bytearray(rng.choice(samples[:4]))
        for _ in range(rng.randrange(4)):  # flip, cut or grow
            choice = rng.randrange(3)
            if choice == 0 and base:
                base[rng.randrange(len(base))] = rng.randrange(256)
            elif choice == 1:
                del base[rng.randrange(len(base) + 1):]
            else:
                base += bytes(rng.randrange(64))
        samples.append(bytes(base))
    taken = 0
    for data in samples:
        protocol = UdpGuard().admit(data, lambda: True)
        expected = protocol in (udp_guard.RTP, udp_guard.RTCP)
        assert udp_guard.well_formed_media(data, 1500) is expected, data[:16].hex()
        taken += expected
    assert 1000 < taken < len(samples) - 1000  # both answers were exercised


def test_dtls_and_srtp_only_from_the_legs_pair_stun_from_anywhere() -> None:
    guard = UdpGuard()
    assert guard.admit(DTLS, lambda: False) is None
    assert guard.admit(RTP, lambda: False) is None
    assert guard.admit(binding(), lambda: False) == "stun"
    assert guard.admit(DTLS, lambda: True) == "dtls" and guard.admit(RTCP_RR, lambda: True) == "rtcp"
    assert guard.dropped["wrong-source"] == 2


def test_each_kind_is_logged_at_most_once_per_interval_with_the_count(caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    guard = UdpGuard(log_interval=60.0, clock=lambda: now[0])
    caplog.set_level(logging.INFO, logger=udp_guard.__name__)
    for _ in range(500):
        guard.admit(b"", lambda: True)
        guard.admit(RTP[:5], lambda: True)
    assert len(caplog.records) == 2
    now[0] += 59.0
    guard.admit(b"", lambda: True)
    assert len(caplog.records) == 2
    now[0] += 1.0
    guard.admit(b"", lambda: True)
    assert len(caplog.records) == 3
    assert caplog.records[-1].getMessage().startswith("udp-empty: 501 datagram(s)")  # those left unlogged, and this one
    assert guard.dropped["empty"] == 502 and guard.dropped["truncated"] == 500


def test_a_handler_failure_is_counted_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    guard = UdpGuard()
    caplog.set_level(logging.INFO, logger=udp_guard.__name__)
    guard.failed(binding(), struct.error("unpack requires a buffer of 4 bytes"))
    guard.failed(RTP, KeyError("x"))
    assert guard.dropped["malformed-stun"] == 1 and guard.dropped["failed"] == 1
    assert not [r for r in caplog.records if r.exc_info]
    assert "KeyError" in caplog.records[-1].getMessage()
