"""A room forwarding real WebRTC media between two aiortc peers on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

from helpers.media_peers import Peer, connect, dominant_colour

from sfu import Room, SfuOptions
from sfu.receiver_hooks import FrameSink


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
        # retransmissions (RTX) reach the camera's receiver, though two video sections share the RTX type
        camera = a.pc.getTransceivers()[1].receiver
        rtx = camera._RTCRtpReceiver__rtx_ssrc
        assert rtx and all(camera.transport._rtp_router.ssrc_table[s] is camera for s in rtx)
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_screen_share_is_a_third_picture_beside_the_camera() -> None:
    room = Room("r2", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    red.share_screen("green")
    try:
        a = await connect(room, "a", "practitioner", red)
        await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video()) == "red"
        for _ in range(100):
            if len(blue.screen_frames) >= 3:
                break
            await asyncio.sleep(0.05)
        assert blue.screen_frames and dominant_colour(blue.screen_frames[-1]) == "green"
        assert a.producers["screen"].frames > 0
        assert not red.screen_frames  # the patient shares nothing
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def eventually(check: Any, timeout: float = 15.0) -> Any:
    for _ in range(int(timeout / 0.1)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met")


async def test_publisher_is_told_the_lowest_of_cap_own_and_subscriber_estimates() -> None:
    from sfu import receiver_hooks

    # caps far below what aiortc's estimator reports (it starts near the incoming rate)
    room = Room("r3", SfuOptions(max_video_bitrate=6_000))
    red, blue = Peer("red"), Peer("blue")
    heard: list[int] = []  # the REMBs the publisher receives
    receiver_hooks.watch_remb(red.pc.getTransceivers()[1].sender, heard.append)
    # the subscriber's own estimate, forced lower still: as if its downlink were poor
    receiver_hooks.rewrite_remb(blue.pc.getTransceivers()[1].receiver, lambda bitrate: 3_000)
    try:
        a = await connect(room, "a", "practitioner", red)
        camera = a.producers["camera"]
        # alone in the room, the publisher is held to the configured cap
        # (on a starved box the estimator may dip below the cap for a moment: wait it out)
        await eventually(lambda: heard and (camera.own_estimate or 0) > 6_000 and heard[-1] == 6_000)
        assert max(heard) == 6_000  # never above the cap
        await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video()) == "red"
        # the subscriber's lower estimate reaches the publisher at once: the lowest wins
        await eventually(lambda: 3_000 in heard)
        assert camera.sent_estimate == 3_000
        # the subscriber leaves: back to the cap
        blue_participant = room.participants[1]
        blue_participant.close()
        assert camera.estimate(1_000_000) == 6_000  # its 3 000 no longer counts
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
