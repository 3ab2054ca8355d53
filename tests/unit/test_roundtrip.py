"""The leg's round-trip time from receiver reports' LSR/DLSR (sfu/roundtrip.py)."""

from __future__ import annotations

from sfu.roundtrip import RoundTrip

NTP = 0xE5A1_2345_6789_0000  # some NTP time; report n is n quarter-seconds after it


def ntp(n: int) -> int:
    return NTP + (n << 30)  # n quarter-seconds later


def lsr(n: int) -> int:
    return (ntp(n) >> 16) & 0xFFFFFFFF


def test_a_report_block_gives_the_time_since_our_report_less_its_delay() -> None:
    r = RoundTrip()
    assert r.value is None
    r.sender_report(ntp(0), at=10.0)
    assert r.receiver_report(lsr(0), dlsr=int(0.1 * 65536), at=10.3) is not None
    assert r.value is not None and abs(r.value - 0.2) < 1e-3


def test_a_block_naming_an_older_report_still_counts() -> None:
    # aiortc takes a sample only when the block names the sender's newest report; on a 150 ms leg
    # with reports every 0.5-1.5 s, a newer one has often gone out meanwhile
    r = RoundTrip()
    r.sender_report(ntp(0), at=10.0)
    r.sender_report(ntp(1), at=10.25)
    assert r.receiver_report(lsr(0), dlsr=int(0.2 * 65536), at=10.35) is not None
    assert r.value is not None and abs(r.value - 0.15) < 1e-3


def test_a_slower_leg_is_believed_at_once_and_a_faster_one_after_the_window() -> None:
    r = RoundTrip(window=1.5)
    for n, (sent, rtt) in enumerate([(0.0, 0.001), (1.0, 0.001), (2.0, 0.155), (3.0, 0.05), (4.0, 0.05)]):
        r.sender_report(ntp(4 * n), at=sent)
        r.receiver_report(lsr(4 * n), dlsr=0, at=sent + rtt)
        if n == 2:
            assert r.value is not None and abs(r.value - 0.155) < 1e-3  # the first slow sample
        if n == 3:
            assert r.value is not None and abs(r.value - 0.155) < 1e-3  # held for the window
    assert r.value is not None and abs(r.value - 0.05) < 1e-3  # 2 s after the slow one
    assert r.latest is not None and abs(r.latest - 0.05) < 1e-3


def test_unknown_ambiguous_and_absurd_blocks_are_no_sample() -> None:
    r = RoundTrip(keep=4)
    assert r.receiver_report(0, 0, at=1.0) is None  # no report heard yet
    assert r.receiver_report(lsr(3), 0, at=1.0) is None  # not one of ours
    r.sender_report(ntp(0), at=1.0)
    r.sender_report(ntp(0), at=2.0)  # an idle sender repeats its time: which one does a block mean?
    assert r.receiver_report(lsr(0), 0, at=2.1) is None
    for n in range(1, 6):
        r.sender_report(ntp(n), at=2.0 + n)
    assert r.receiver_report(lsr(1), 0, at=9.0) is None  # forgotten: only the last 4 are kept
    assert r.receiver_report(lsr(5), dlsr=int(3 * 65536), at=7.5) is None  # DLSR longer than the time since
    assert r.receiver_report(lsr(4), dlsr=0, at=30.0) is None  # 24 s: a mistaken report, not a round trip
    assert r.value is None
