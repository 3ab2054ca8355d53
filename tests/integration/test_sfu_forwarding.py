"""A room forwarding real WebRTC media between two aiortc peers on loopback."""

from __future__ import annotations

import asyncio

from media_peers import Peer, dominant_colour
from sfu import Room, SfuOptions
from sfu.receiver_hooks import FrameSink


async def connect(room: Room, pid: str, role: str, peer: Peer):
    participant = room.add_participant(pid, role)
    answer = await participant.handle_offer(await peer.offer())
    await peer.accept(answer)
    return participant


async def test_each_side_sees_the_other_colour_without_server_decoding() -> None:
    room = Room("r1", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        a = await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        assert dominant_colour(await red.wait_video()) == "blue"
        assert dominant_colour(await blue.wait_video()) == "red"
        for p in (a, b):
            assert p.producers["camera"].frames > 0 and p.producers["mic"].frames > 0
            # the receivers hand frames to the SFU: no decoder queue, no decoder
            for t in p.pc.getTransceivers():
                assert isinstance(t.receiver._RTCRtpReceiver__decoder_queue, FrameSink)
                assert t._codecs[0].mimeType in ("audio/opus", "video/VP8")
        assert red.audio_frames > 0 and blue.audio_frames > 0
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
