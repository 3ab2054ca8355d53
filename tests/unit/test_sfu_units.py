"""SFU building blocks, table-driven: keyframes, close cascades (packets: test_rtp_forward.py)."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCRtpReceiver
from aiortc.rtp import RtpPacket

from sfu import Consumer, Producer, Room, SfuOptions
from sfu.frames import is_keyframe


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
