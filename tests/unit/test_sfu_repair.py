"""NACK scheduling and keyframe-request coalescing of the publisher's leg (sfu/repair.py)."""

from __future__ import annotations

import pytest

from sfu.repair import KeyframeRequests, NackSchedule, RetransmitGate, UnansweredNacks, nack_items


def test_a_missing_packet_is_asked_at_once_then_once_per_round_trip() -> None:
    s = NackSchedule()
    assert s.due({10, 11}, now=0.0, rtt=0.15) == [10, 11]
    # within the round trip the retransmission may still be on its way: no duplicate
    assert s.due({10, 11}, now=0.05, rtt=0.15) == []
    assert s.due({10, 11}, now=0.15, rtt=0.15) == []
    wait = s.wait(0.15)
    assert 0.15 < wait < 0.25
    assert s.next_time(0.15) == wait
    # 11 came back; 10 did not: 10 is asked again (the lost retransmission)
    assert s.due({10}, now=wait, rtt=0.15) == [10]
    assert s.tries(10) == 2 and s.tries(11) == 0


def test_retries_back_off_so_that_an_underestimated_round_trip_cannot_spend_them_all_at_once() -> None:
    # issue 18: a path that just went from 1 ms to 155 ms still reads a few ms until the next
    # receiver report; the retries must still reach past the real round trip, twice over
    s = NackSchedule()
    times = []
    for step in range(120):  # 1.2 s in 10 ms steps, the measured rtt stuck at 6 ms
        now = step * 0.01
        if s.due({7}, now=now, rtt=0.006):
            times.append(now)
    wait = s.wait(0.006)
    assert wait < 0.03
    for before, after in zip(times, times[1:]):  # each waits at least half the asking before it
        need = max(wait, before / 2)
        assert need - 1e-9 <= after - before < need + 0.01 + 1e-9  # (asked at the next 10 ms step)
    assert times[5] > 0.2 and len(times) >= 8
    assert len([t for t in times if t >= 0.3]) >= 2  # asked again after a 155 ms retransmission was lost
    assert max(times) < s.max_age
    assert s.next_time(0.006) is None  # then given up
    # a well-measured round trip is still honoured at once: the first retry waits one round trip
    r = NackSchedule()
    r.due({7}, now=0.0, rtt=0.15)
    assert r.next_time(0.15) == r.wait(0.15)


def test_on_a_well_measured_path_the_first_three_retries_come_one_round_trip_apart() -> None:
    # issue 18: doubling the wait put the fourth NACK 4 waits after the first (0.78 s on a 150 ms path);
    # when two retransmissions in a row were lost, the doctor's picture froze behind it
    s = NackSchedule()
    wait = s.wait(0.15)
    times = []
    for step in range(1000):  # 1 s in 1 ms steps
        now = step * 0.001
        if s.due({7}, now=now, rtt=0.15):
            times.append(now)
    assert len(times) >= 5
    for n in range(4):
        assert abs(times[n] - n * wait) < 0.002
    assert times[4] - times[3] >= 1.5 * wait - 0.002  # then backing off


def test_new_gaps_are_asked_at_once_without_repeating_the_old_ones() -> None:
    s = NackSchedule()
    assert s.due({5}, now=0.0, rtt=0.1) == [5]
    assert s.due({5, 9}, now=0.01, rtt=0.1) == [9]


def test_a_packet_is_given_up_after_its_tries_or_its_age() -> None:
    s = NackSchedule(max_tries=3, max_age=1.0)
    asked = [t for t in range(0, 200) if s.due({1}, now=t * 0.01, rtt=0.05)]
    assert len(asked) == 3 and s.next_time(0.05) is None
    old = NackSchedule(max_tries=100, max_age=0.5)
    times = [t * 0.01 for t in range(200) if old.due({1}, now=t * 0.01, rtt=0.1)]
    assert max(times) < 0.5 and len(times) >= 3


def test_a_gap_too_long_to_retransmit_is_given_up_and_counted() -> None:
    s = NackSchedule(max_burst=50)
    assert s.due(set(range(100, 180)), now=0.0, rtt=0.1) == []  # an outage: a keyframe will do
    assert s.bursts == 1 and s.next_time(0.1) is None
    assert s.due(set(range(100, 180)) | {200}, now=0.01, rtt=0.1) == [200]  # a loss after it: asked
    assert s.bursts == 1


def test_without_a_measured_rtt_a_default_is_used_and_the_wait_has_a_floor() -> None:
    s = NackSchedule(min_wait=0.02)
    assert s.wait(None) > 0.1 and s.wait(0.0) == 0.02


def test_nacks_are_oldest_first_across_the_wrap() -> None:
    assert NackSchedule().due({65534, 65535, 0, 1}, now=0.0, rtt=0.1) == [65534, 65535, 0, 1]


def test_keyframe_requests_are_coalesced_and_the_last_one_is_not_lost() -> None:
    k = KeyframeRequests(interval=0.5)
    assert k.request(0.0) is True
    # three subscribers ask during the quiet time: one request, at its end
    assert [k.request(t) for t in (0.1, 0.2, 0.3)] == [False, False, False]
    assert k.pending_at == 0.5
    assert k.fire(0.4) is False and k.fire(0.5) is True
    assert k.pending_at is None and k.fire(0.6) is False


def test_a_keyframe_arriving_answers_the_pending_request() -> None:
    k = KeyframeRequests(interval=0.5)
    k.request(0.0)
    k.request(0.1)
    k.keyframe_arrived(0.2)
    assert k.pending_at is None and k.fire(0.5) is False
    # a keyframe seen before a request does not answer it
    k2 = KeyframeRequests(interval=0.5)
    k2.request(0.0)
    k2.keyframe_arrived(0.05)
    k2.request(0.1)
    assert k2.pending_at == 0.5


def test_a_packet_is_resent_at_most_once_per_round_trip() -> None:
    gate = RetransmitGate()
    assert gate.allow(7, now=0.0, rtt=0.1) is True
    assert gate.allow(7, now=0.05, rtt=0.1) is False  # the first resend may still be on its way
    assert gate.allow(8, now=0.05, rtt=0.1) is True  # another packet is not held back
    assert gate.allow(7, now=0.11, rtt=0.1) is True and gate.refused == 1
    assert gate.allow(7 + 512, now=0.12, rtt=0.1) is True  # same slot, another packet


def test_retransmissions_take_at_most_their_share_of_the_leg() -> None:
    gate = RetransmitGate(share=0.5, burst=4)
    assert [gate.allow(seq, now=0.0, rtt=0.1) for seq in range(6)] == [True] * 4 + [False] * 2
    assert gate.over_budget == 2
    for _ in range(4):  # four original packets earn two retransmissions
        gate.original_sent()
    assert [gate.allow(seq, now=0.0, rtt=0.1) for seq in range(10, 13)] == [True, True, False]
    for _ in range(100):  # a long quiet spell refills up to the burst, no further
        gate.original_sent()
    assert sum(gate.allow(seq, now=0.0, rtt=0.1) for seq in range(20, 30)) == 4


def test_unanswered_nacks_ask_for_one_keyframe_then_wait_for_it() -> None:
    nacks = UnansweredNacks(threshold=10, window=1.0, hold=2.0)
    assert not any(nacks.unanswered(10.0 + i * 0.2) for i in range(5))  # a trickle is left to the budget
    assert not any(nacks.unanswered(11.5 + i * 0.2) for i in range(5))  # the window started again at 11.5
    assert [nacks.unanswered(13.0 + i * 0.01) for i in range(10)] == [False] * 9 + [True]
    assert not any(nacks.unanswered(13.2 + i * 0.01) for i in range(50))  # the keyframe has time to come
    assert [nacks.unanswered(15.2 + i * 0.01) for i in range(10)][-1] is True  # still broken: again
    assert nacks.keyframes == 2


def _decoded(items: bytes) -> list[int]:
    # a receiver's reading (libwebrtc's: 16-bit numbers), through aiortc's parser of the FCI
    from aiortc.rtp import RtcpRtpfbPacket

    return [s & 0xFFFF for s in RtcpRtpfbPacket.parse(b"\0" * 8 + items, 1).lost]


@pytest.mark.parametrize("lost", [
    [65533, 65535, 0, 3, 40],  # across the wrap, oldest first (NackSchedule.due's order)
    [100, 101, 99, 120, 100],  # a repeat list made of two, and a duplicate
    [7],
    [0, 16, 17, 33, 34, 50],  # the 16th after an item is in its mask, the 17th starts a new one
])
def test_nack_items_say_each_lost_packet_once_in_any_order_and_across_the_wrap(lost: list[int]) -> None:
    items = nack_items(lost)
    assert sorted(_decoded(items)) == sorted(set(lost))
    assert len(items) % 4 == 0


def test_nack_items_take_as_few_items_as_the_masks_allow() -> None:
    assert len(nack_items([65533, 65535, 0, 3])) == 4  # one PID (65533) and its mask, across the wrap
    assert len(nack_items([0, 16, 17])) == 8  # 16 is in 0's mask, 17 is not
    assert nack_items([]) == b""
