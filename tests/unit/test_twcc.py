"""Transport-wide feedback on the wire (sfu/twcc.py): built for publishers, read from subscribers."""

from __future__ import annotations

import random
import struct

import pytest

from sfu.twcc import URI, FeedbackRecorder, add_transport_cc, feedback_packets, parse_feedback


def test_a_hand_made_feedback_is_read_field_by_field() -> None:
    # draft-holmer-rmcat-transport-wide-cc-extensions-01 section 3.1, written by hand: base 100, 3 statuses,
    # reference 1 x 64 ms, feedback count 5, one two-bit status vector (small, not received, large),
    # deltas +4 ticks (1 ms after the reference) and -8 ticks (2 ms before the previous), 3 bytes of padding
    body = struct.pack("!HHI", 100, 3, (1 << 8) | 5) + struct.pack("!H", 0xC000 | 1 << 12 | 0 << 10 | 2 << 8)
    body += bytes([4]) + struct.pack("!h", -8) + bytes([0, 0, 3])
    packet = struct.pack("!BBHII", 0x80 | 0x20 | 15, 205, (12 + len(body)) // 4 - 1, 0x1111, 0x2222) + body
    fb = parse_feedback(packet)
    assert (fb.sender_ssrc, fb.media_ssrc, fb.base_sequence, fb.count) == (0x1111, 0x2222, 100, 5)
    assert fb.reference == pytest.approx(0.064)
    assert [s for s, _ in fb.packets] == [100, 101, 102]
    assert fb.packets[0][1] == pytest.approx(0.065) and fb.packets[1][1] is None
    assert fb.packets[2][1] == pytest.approx(0.063)


def _round_trip(arrivals: list[tuple[int, float]]) -> dict[int, float | None]:
    recorder = FeedbackRecorder()
    for seq, at in arrivals:
        recorder.record(seq, at)
    seen: dict[int, float | None] = {}
    for packet in recorder.build(1, 2):
        assert len(packet) % 4 == 0 and len(packet) <= 1200 + 24
        for seq, at in parse_feedback(packet).packets:
            assert seq not in seen  # every number once
            seen[seq] = at
    return seen


def test_what_was_recorded_comes_back_with_losses_reordering_and_the_16_bit_wrap() -> None:
    rng = random.Random(7)
    arrivals, t = [], 1000.0
    for n in range(600):
        seq = (65_300 + n) & 0xFFFF
        t += rng.choice([0.0002, 0.001, 0.004, 0.07])  # small, and large (over 64 ms) deltas
        if rng.random() < 0.1:
            continue  # lost
        arrivals.append((seq, t))
    arrivals[10], arrivals[11] = arrivals[11], arrivals[10]  # reordered on the way
    seen = _round_trip(arrivals)
    got = {s: a for s, a in seen.items() if a is not None}
    assert set(got) == {s for s, _ in arrivals}
    for seq, at in arrivals:
        assert abs(got[seq] - at) <= 0.00025 * 2  # 250 µs units, rounding does not drift
    lost = {s for s, a in seen.items() if a is None}
    assert lost and not lost & set(got)


def test_negative_deltas_and_a_long_gap_are_reported() -> None:
    seen = _round_trip([(1, 10.0), (2, 9.99), (1200, 10.5), (1201, 10.5)])
    assert seen[2] == pytest.approx(9.99, abs=0.0003)  # arrived before the one numbered before it
    assert sum(1 for a in seen.values() if a is None) == 1197  # the gap: said lost, in run-length chunks
    assert seen[1201] == pytest.approx(10.5, abs=0.0003)


def test_a_delta_beyond_16_bits_starts_a_new_feedback() -> None:
    recorder = FeedbackRecorder()
    recorder.record(5, 10.0)
    recorder.record(6, 30.0)  # 20 s later: 80000 ticks
    packets = recorder.build(1, 2)
    assert len(packets) == 2
    assert [p for fb in map(parse_feedback, packets) for p in fb.packets] == [(5, pytest.approx(10.0, abs=0.001)),
                                                                             (6, pytest.approx(30.0, abs=0.001))]
    assert [parse_feedback(p).count for p in packets] == [0, 1]  # the feedback count goes on
    assert recorder.build(1, 2) == []  # nothing new: nothing sent


def test_what_was_reported_is_not_reported_again_and_late_arrivals_are_dropped() -> None:
    recorder = FeedbackRecorder()
    for seq in (1, 2, 4):
        recorder.record(seq, seq * 0.01)
    first = parse_feedback(recorder.build(1, 2)[0])
    assert [a is None for _, a in first.packets] == [False, False, True, False]
    recorder.record(3, 0.05)  # too late: already said lost
    recorder.record(5, 0.05)
    (second,) = recorder.build(1, 2)
    assert [s for s, _ in parse_feedback(second).packets] == [5]


def test_a_flood_of_numbers_keeps_memory_bounded() -> None:
    recorder = FeedbackRecorder()
    for n in range(50_000):
        recorder.record(n & 0xFFFF, n * 0.0001)
    assert len(recorder._arrivals) <= 8192
    assert all(len(p) <= 1224 for p in recorder.build(1, 2))


@pytest.mark.parametrize("packet, message", [
    (b"\x8f\xcd\x00\x04" + bytes(8), "too short"),
    (b"\x81\xcd\x00\x04" + bytes(16), "not a transport feedback"),
    (b"\x8f\xcd\x00\x09" + bytes(16), "says 40 bytes"),
    (b"\x8f\xcd\x00\x04" + bytes(8) + struct.pack("!HHI", 0, 20, 0), "chunks stop"),
    (b"\x8f\xcd\x00\x05" + bytes(8) + struct.pack("!HHI", 0, 3, 0) + struct.pack("!H", 0x2003) + b"\0\0",
     "cut short"),
    (b"\x8f\xcd\x00\x05" + bytes(8) + struct.pack("!HHI", 0, 3, 0) + struct.pack("!H", 0x6003) + b"\0\0",
     "reserved"),
    (b"\x8f\xcd\x00\x05" + bytes(8) + struct.pack("!HHI", 0, 3, 0) + struct.pack("!H", 0x0000) + b"\0\0",
     "empty run"),
])
def test_malformed_feedback_is_a_clear_error(packet: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_feedback(packet)


def test_feedback_is_found_in_a_compound_and_garbage_ends_the_walk() -> None:
    recorder = FeedbackRecorder()
    recorder.record(1, 1.0)
    (fb,) = recorder.build(1, 2)
    rr = struct.pack("!BBHI", 0x80, 201, 1, 1)
    assert feedback_packets(rr + fb) == [fb]
    assert feedback_packets(rr + fb[:-4]) == []  # cut short: not taken
    assert feedback_packets(b"\x00" * 8 + fb) == []


OFFER = "\r\n".join([
    "v=0", "o=- 1 2 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63", "c=IN IP4 0.0.0.0", "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    f"a=extmap:3 {URI}",
    "a=rtpmap:111 opus/48000/2", "a=rtcp-fb:111 transport-cc", "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=mid:1",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    f"a=extmap:3 {URI}",
    "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 goog-remb", "a=rtcp-fb:96 transport-cc", "a=rtcp-fb:96 nack",
    "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", ""])
ANSWER = "\r\n".join([
    "v=0", "o=- 3 4 IN IP4 127.0.0.1", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111", "c=IN IP4 0.0.0.0", "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97", "c=IN IP4 0.0.0.0", "a=mid:1",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=rtpmap:96 VP8/90000", "a=rtcp-fb:96 nack", "a=rtcp-fb:96 goog-remb",
    "a=rtpmap:97 rtx/90000", "a=fmtp:97 apt=96", ""])


def test_the_answer_gets_transport_cc_where_the_offer_has_it() -> None:
    answer, ext = add_transport_cc(ANSWER, OFFER)
    assert ext == 3
    assert answer.endswith("\r\n") and "\n" not in answer.replace("\r\n", "")
    audio, video = answer.split("m=")[1:]
    assert f"a=extmap:3 {URI}" in audio and f"a=extmap:3 {URI}" in video
    assert "a=rtcp-fb:111 transport-cc" in audio
    assert "a=rtcp-fb:96 transport-cc" in video and "a=rtcp-fb:97 transport-cc" not in video  # not on RTX
    # what was there stays, in its order
    assert [line for line in answer.split("\r\n") if "transport-cc" not in line and URI not in line] \
        == ANSWER.split("\r\n")


def test_an_offer_without_transport_cc_or_with_two_ids_leaves_the_answer_alone() -> None:
    bare = "\r\n".join(line for line in OFFER.split("\r\n") if URI not in line)
    assert add_transport_cc(ANSWER, bare) == (ANSWER, None)
    two = OFFER.replace(f"a=extmap:3 {URI}\r\na=rtpmap:96", f"a=extmap:4 {URI}\r\na=rtpmap:96")
    assert add_transport_cc(ANSWER, two) == (ANSWER, None)
