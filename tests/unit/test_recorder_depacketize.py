"""The recorder's depacketizer: aiortc's own packetizers (VP8, H.264) on real encoded frames, back into frames."""

from __future__ import annotations

import random
from fractions import Fraction

import av
import numpy as np
import pytest
from aiortc.codecs.h264 import H264Encoder
from aiortc.codecs.vpx import Vp8Encoder
from helpers.synthetic import vp8_frames

from recorder.depacketize import Depacketizer, h264_payload, vp8_payload
from sfu.frames import is_keyframe
from sfu.packet import Packet

SSRC = 1234


def h264_frames(n: int, gop: int = 10) -> list[tuple[bytes, bool]]:
    """Encoded H.264 access units (Annex-B, as libx264 and browsers make them) of a moving picture."""
    ctx = av.CodecContext.create("libx264", "w")
    ctx.width, ctx.height, ctx.pix_fmt = 320, 240, "yuv420p"
    ctx.time_base = Fraction(1, 15)
    ctx.gop_size = gop
    ctx.options = {"preset": "ultrafast", "tune": "zerolatency"}
    rng = np.random.default_rng(1)
    out = []
    for i in range(n + 1):
        frame = None
        if i < n:
            picture = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # noise: keyframes span FU-As
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
        out += [(bytes(p), p.is_keyframe) for p in ctx.encode(frame)]
    return out


def packetize(codec: str, frames: list[tuple[bytes, bool]], seq0: int = 65500) -> list[Packet]:
    """RTP packets as a publisher sends them (aiortc's packetizers), sequence numbers wrapping."""
    encoder = Vp8Encoder() if codec == "vp8" else H264Encoder()
    packets = []
    seq = seq0
    for i, (data, _) in enumerate(frames):
        p = av.Packet(data)
        p.pts, p.time_base = i, Fraction(1, 15)
        payloads, timestamp = encoder.pack(p)
        for j, payload in enumerate(payloads):
            packets.append(Packet(SSRC, 96, seq & 0xFFFF, timestamp, int(j == len(payloads) - 1), payload))
            seq += 1
    return packets


def same(data: bytes) -> bytes:
    """Annex-B with 3-byte start codes (libx264 writes 3 or 4 bytes; RTP keeps the NAL units only)."""
    return data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01")


def feed(d: Depacketizer, packets: list[Packet]) -> list[tuple[bytes, int, bool]]:
    return [(same(f.data), f.timestamp, f.keyframe) for p in packets for f in d.add(p)]


def originals(frames: list[tuple[bytes, bool]]) -> list[bytes]:
    return [same(d) for d, _ in frames]


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_in_order_packets_give_back_every_frame_byte_for_byte(codec: str) -> None:
    frames = vp8_frames("red", 20) if codec == "vp8" else h264_frames(20)
    packets = packetize(codec, frames)
    if codec == "h264":  # the stream exercises every packetization: single NAL, STAP-A, FU-A
        assert {p.payload[0] & 0x1F for p in packets} >= {24, 28}
    out = feed(Depacketizer(codec, 90000), packets)
    assert [d for d, _, _ in out] == originals(frames)
    assert [k for _, _, k in out] == [k for _, k in frames]
    assert len({t for _, t, _ in out}) == len(frames)


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_reordered_packets_are_put_back_in_order(codec: str) -> None:
    frames = vp8_frames("blue", 15) if codec == "vp8" else h264_frames(15)
    packets = packetize(codec, frames)
    shuffled = list(packets)
    rng = random.Random(3)
    for i in range(1, len(shuffled) - 4, 4):  # local reordering, as the network does (the first sets the start)
        window = shuffled[i:i + 4]
        rng.shuffle(window)
        shuffled[i:i + 4] = window
    assert shuffled != packets
    out = feed(Depacketizer(codec, 90000), shuffled)
    assert [d for d, _, _ in out] == originals(frames)


def test_a_late_retransmission_completes_the_frames_held_behind_it() -> None:
    frames = h264_frames(6)
    packets = packetize("h264", frames)
    d = Depacketizer("h264", 90000)
    hole = 3
    out = feed(d, packets[:hole] + packets[hole + 1:])
    assert len(out) < len(frames)  # held behind the gap
    out += feed(d, [packets[hole]])  # NACK answered
    assert [x for x, _, _ in out] == originals(frames) and d.lost == 0


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_a_lost_packet_drops_frames_until_the_next_keyframe_and_asks_for_one(codec: str) -> None:
    frames = vp8_frames("green", 40) if codec == "vp8" else h264_frames(40, gop=10)
    if codec == "vp8":  # libvpx's realtime stream has one keyframe: force a second
        frames = frames[:20] + vp8_frames("red", 20)
    keys = [i for i, (_, k) in enumerate(frames) if k]
    assert len(keys) >= 2
    packets = packetize(codec, frames)
    by_frame: dict[int, list[Packet]] = {}
    for p in packets:
        by_frame.setdefault(p.timestamp, []).append(p)
    stamps = sorted(by_frame, key=lambda t: by_frame[t][0].sequence_number - 65500 & 0xFFFF)
    lost = by_frame[stamps[keys[0] + 2]][0]  # the first packet of an inter frame, never repaired
    d = Depacketizer(codec, 90000)
    out = feed(d, [p for p in packets if p is not lost])
    assert d.need_keyframe and d.lost == 1 and d.frames_dropped >= 1
    got = [x for x, _, _ in out]
    expected = originals(frames)
    # everything before the loss, then nothing until the next keyframe, then everything
    assert got == expected[:keys[0] + 2] + expected[keys[1]:]
    assert all(is_keyframe(codec, x) == (x in {same(frames[k][0]) for k in keys}) for x in got)


def test_a_video_track_starts_at_a_keyframe() -> None:
    frames = vp8_frames("red", 10)
    packets = packetize("vp8", frames)
    first_inter = next(i for i, p in enumerate(packets) if p.timestamp != packets[0].timestamp)
    d = Depacketizer("vp8", 90000)
    assert feed(d, packets[first_inter:]) == [] and d.need_keyframe


def test_opus_packets_are_frames_red_is_unwrapped_and_late_ones_dropped() -> None:
    d = Depacketizer("opus", 48000)
    # RED (RFC 2198): one redundant block header (4 bytes) then the primary's (1 byte)
    red = bytes([0x80 | 111, 0x07, 0x80, 0x03]) + bytes([111]) + b"old" + b"new!"
    out = [f.data for f in d.add(Packet(SSRC, 63, 10, 960, 1, red), red=True)]
    out += [f.data for f in d.add(Packet(SSRC, 111, 12, 2880, 1, b"third"))]  # 11 is missing: held briefly
    assert out == [b"new!"]
    out += [f.data for f in d.add(Packet(SSRC, 111, 11, 1920, 1, b"second"))]
    assert out == [b"new!", b"second", b"third"]
    assert d.add(Packet(SSRC, 111, 11, 1920, 1, b"second")) == []  # a duplicate
    # a gap never filled: given up on after AUDIO_SPAN of media, not waited for
    out = [f.data for seq in range(14, 30) for f in d.add(Packet(SSRC, 111, seq, 960 * seq, 1, bytes([seq])))]
    assert out == [bytes([s]) for s in range(14, 30)] and d.lost == 1


@pytest.mark.parametrize(("payload", "expected"), [
    (bytes([0x10, 0xAA]), b"\xaa"),  # S bit, no extension
    (bytes([0x90, 0x80, 0x81, 0x02, 0xAA]), b"\xaa"),  # X, I with a 15-bit picture id
    (bytes([0x90, 0xC0, 0x05, 0x01, 0xAA]), b"\xaa"),  # X, I (7 bits), L
    (bytes([0x90, 0xF0, 0x05, 0x01, 0x20, 0xAA]), b"\xaa"),  # X, I, L, T and K
])
def test_vp8_descriptor(payload: bytes, expected: bytes) -> None:
    assert vp8_payload(payload) == expected


def test_h264_payload_formats() -> None:
    assert h264_payload(b"\x65abc") == b"\x00\x00\x00\x01\x65abc"
    stap = b"\x78" + b"\x00\x02\x67\x01" + b"\x00\x02\x68\x02"
    assert h264_payload(stap) == b"\x00\x00\x00\x01\x67\x01\x00\x00\x00\x01\x68\x02"
    assert h264_payload(b"\x7c\x85xy") == b"\x00\x00\x00\x01\x65xy"  # FU-A start of an IDR slice
    assert h264_payload(b"\x7c\x05zz") == b"zz"
    with pytest.raises(ValueError):
        h264_payload(b"\x78\x00\x09\x67")  # a STAP-A NAL longer than the packet
    with pytest.raises(ValueError):
        h264_payload(b"\x79\x00")  # STAP-B: not in packetization-mode 1


def test_a_sequence_that_jumps_back_under_the_same_ssrc_starts_again_at_a_keyframe() -> None:
    frames = vp8_frames("red", 5)
    d = Depacketizer("vp8", 90000)
    before = feed(d, packetize("vp8", frames, seq0=30000))
    after = feed(d, packetize("vp8", frames, seq0=10))  # e.g. a publisher that restarted its packetizer
    assert len(before) == len(after) == len(frames)
