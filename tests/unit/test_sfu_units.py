"""SFU building blocks, table-driven: keyframes, jitter buffers, close cascades (packets: test_rtp_forward.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtp import RtpPacket

from sfu import Consumer, Producer, Room, SfuOptions
from sfu.frames import is_keyframe
from sfu.aiortc_hooks import AudioPassBuffer, MarkerJitterBuffer


@pytest.mark.parametrize(
    ("codec", "data", "key"),
    [
        ("vp8", bytes([0x10, 0x02, 0x00]), True),  # P bit 0: key frame
        ("vp8", bytes([0x11, 0x02, 0x00]), False),
        ("vp8", b"", False),
        ("h264", b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88", True),  # SPS then IDR
        ("h264", b"\x00\x00\x00\x01\x41\x9a", False),  # non-IDR slice
        ("opus", b"\xfc\x01", True),
    ],
)
def test_is_keyframe(codec: str, data: bytes, key: bool) -> None:
    assert is_keyframe(codec, data) is key


def rtp(seq: int, ts: int, marker: bool, data: bytes) -> RtpPacket:
    p = RtpPacket(payload_type=96, sequence_number=seq, timestamp=ts, marker=int(marker))
    p._data = data  # type: ignore[attr-defined]
    return p


def VP8_KEY(data: bytes) -> bool:
    return is_keyframe("vp8", data)


class Collect(list):  # type: ignore[type-arg]
    """The frames a MarkerJitterBuffer emits."""

    def __call__(self, frame: Any) -> None:
        self.append((frame.data, frame.timestamp))


def marker_buffer(give_up: int = 18000) -> tuple[MarkerJitterBuffer, Collect]:
    out = Collect()
    return MarkerJitterBuffer(capacity=128, keyframe=VP8_KEY, emit=out, give_up=give_up), out


def test_marker_buffer_releases_a_frame_on_its_last_packet() -> None:
    buf, out = marker_buffer()
    buf.add(rtp(1, 3000, False, b"a"))
    assert out == []
    buf.add(rtp(2, 3000, True, b"b"))
    assert out == [(b"ab", 3000)]
    # aiortc's own buffer would still hold it until the next frame starts
    plain = JitterBuffer(capacity=128, is_video=True)
    plain.add(rtp(1, 3000, False, b"a"))
    assert plain.add(rtp(2, 3000, True, b"b"))[1] is None


def test_marker_buffer_waits_for_a_missing_packet_then_releases_all_it_completes() -> None:
    buf, out = marker_buffer()
    buf.add(rtp(10, 6000, False, b"x"))
    buf.add(rtp(12, 6000, True, b"z"))  # 11 lost
    buf.add(rtp(13, 9000, True, b"w"))  # the next frame is complete, but waits its turn
    assert out == []
    buf.add(rtp(11, 6000, False, b"y"))  # repaired by NACK/RTX: both frames go at once
    assert out == [(b"xyz", 6000), (b"w", 9000)]


def test_marker_buffer_gives_up_on_a_lost_packet_and_waits_for_a_keyframe() -> None:
    buf, out = marker_buffer(give_up=9000)
    key, delta = b"\x10", b"\x11"  # VP8 frame tags: key frame, inter frame
    buf.add(rtp(1, 0, True, key))
    buf.add(rtp(2, 3000, False, delta))  # packet 3 (end of this frame) is lost for good
    plis = [buf.add(rtp(seq, ts, True, delta))[0] for seq, ts in ((4, 6000), (5, 9000), (6, 12000), (7, 15000))]
    # the broken frame is dropped once the stream is 9000 ticks further, a keyframe is
    # asked for, and inter frames that depend on the lost one are not forwarded
    assert any(plis) and out == [(key, 0)] and buf.frames_dropped >= 2
    buf.add(rtp(8, 18000, True, key))
    buf.add(rtp(9, 21000, True, delta))
    assert out[1:] == [(key, 18000), (delta, 21000)]  # flowing again


def test_audio_buffer_releases_each_packet_and_drops_late_ones() -> None:
    buf = AudioPassBuffer()
    assert buf.add(rtp(1, 960, False, b"1"))[1].data == b"1"  # type: ignore[union-attr]
    assert buf.add(rtp(3, 2880, False, b"3"))[1].data == b"3"  # type: ignore[union-attr]
    assert buf.add(rtp(2, 1920, False, b"2"))[1] is None  # late: would play out of order
    assert buf.add(rtp(4, 2880, False, b"dup"))[1] is None


async def test_stopped_consumer_ends_its_track() -> None:
    from aiortc.mediastreams import MediaStreamError

    consumer = Consumer("audio", "mic")
    waiting = asyncio.ensure_future(consumer.recv())
    await asyncio.sleep(0)
    consumer.stop()
    consumer.stop()  # twice is fine
    with pytest.raises(MediaStreamError):
        await waiting


async def test_close_cascades_room_to_participants_and_is_idempotent() -> None:
    room = Room("r", SfuOptions())
    events: list[str] = []
    a = room.add_participant("a", "practitioner")
    b = room.add_participant("b", "patient")
    room.on("close", lambda: events.append("room"))
    for p in (a, b):
        p.on("close", lambda p=p: events.append(p.id))
    room.close()
    room.close()
    assert events == ["a", "b", "room"]
    assert a.closed and b.closed and room.participants == ()
    with pytest.raises(Exception, match="closed"):
        room.add_participant("c", "patient")


async def test_a_room_forgets_departed_participants_once_their_media_is_closed() -> None:
    room = Room("r", SfuOptions())
    for i in range(20):
        room.add_participant(f"p{i}", "patient").close()
    # nothing is left closing, so at most the last one is kept for wait_closed()
    assert len(room._departed) <= 1
    assert room.participants == ()
    await room.wait_closed()
    assert room._departed == []


async def test_producer_close_unbinds_consumers_once() -> None:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    receiver: RTCRtpReceiver = pc.addTransceiver("video").receiver
    producer = Producer("p", "video", "camera", receiver, keyframe_request_interval=0.5)
    consumer = Consumer("video", "camera")
    consumer.bind(producer)
    closes: list[int] = []
    producer.on("close", lambda: closes.append(1))
    producer.close()
    producer.close()
    assert closes == [1] and consumer.producer is None and producer.consumers == ()
    await pc.close()


async def test_keyframe_requests_are_throttled() -> None:
    from aiortc import RTCPeerConnection

    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("video").receiver
    producer = Producer("p", "video", "camera", receiver, keyframe_request_interval=60.0)
    assert producer.request_keyframe() is False  # nothing received yet: no stream to ask
    producer._on_packet(RtpPacket(payload_type=96, sequence_number=1, timestamp=0, ssrc=5, payload=b"\x10\x01"))
    assert producer.request_keyframe() is True
    assert [producer.request_keyframe() for _ in range(5)] == [False] * 5
    assert producer.keyframe_requests == 1
    await pc.close()


@pytest.mark.parametrize(
    ("loss", "rtt", "level"),
    [(0.0, None, "good"), (0.01, 80.0, "good"), (0.05, 80.0, "fair"), (0.01, 300.0, "fair"),
     (0.2, 50.0, "poor"), (0.0, 900.0, "poor")],
)
def test_quality_levels(loss: float, rtt: float | None, level: str) -> None:
    from signaling.call.quality import quality

    assert quality(loss, rtt) == level
