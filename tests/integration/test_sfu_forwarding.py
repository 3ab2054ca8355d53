"""A room forwarding real WebRTC media between two aiortc peers on loopback."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from helpers.loss import drop_sent
from helpers.media_peers import Peer, connect, dominant_colour

from sfu import Room, SfuOptions
from sfu.options import remb_cap
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

from sfu import aiortc_hooks as hooks


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
            for t in p.pc.getTransceivers():
                assert hooks.negotiated_codecs(t)[0].mimeType in ("audio/opus", "video/VP8")
            # the packets went by the SFU's own ingress, which keeps the receivers' statistics
            camera = p.producers["camera"]
            stats = hooks.stream_statistics(camera.receiver)
            assert [s.packets_received > 0 for s in stats] == [True] and camera.stream.media_ssrc is not None
            # retransmissions (RTX) are told apart, though two video sections share the RTX type
            assert set(camera.stream.rtx_ssrcs.values()) == {camera.stream.media_ssrc}
        assert red.audio_frames > 0 and blue.audio_frames > 0
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


def force_remb(receiver: Any, bitrate: int) -> None:
    """Make an aiortc peer's receiver report `bitrate` in every REMB it sends (a poor downlink)."""
    send = receiver._send_rtcp

    async def send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            _, ssrcs = unpack_remb_fci(packet.fci)
            packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=packet.ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs))
        await send(packet)

    receiver._send_rtcp = send_rtcp


async def test_publisher_is_told_the_lowest_of_cap_and_subscriber_estimates() -> None:
    room = Room("r3", SfuOptions(max_video_bitrate=6_000))
    red, blue = Peer("red"), Peer("blue")
    heard: list[int] = []  # the REMBs the publisher receives
    hooks.watch_remb(red.pc.getTransceivers()[1].sender, heard.append)
    # the subscriber's own estimate, forced below the cap: as if its downlink were poor
    force_remb(blue.pc.getTransceivers()[1].receiver, 3_000)
    try:
        a = await connect(room, "a", "practitioner", red)
        camera = a.producers["camera"]
        # alone in the room, the publisher is held to the configured cap (its whole send rate: the video's
        # cap, audio and headers), again and again
        await eventually(lambda: len(heard) >= 2)
        assert set(heard) == {remb_cap(6_000)} == {77_000}
        await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video()) == "red"
        # the subscriber's lower estimate reaches the publisher: the lowest wins
        await eventually(lambda: 3_000 in heard)
        assert camera.sent_estimate == 3_000
        # the subscriber leaves: back to the cap
        blue_participant = room.participants[1]
        blue_participant.close()
        assert camera.estimate() == 77_000  # its 3 000 no longer counts
        count = len(heard)
        await eventually(lambda: len(heard) > count and heard[-1] == 77_000)
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_the_video_publisher_is_asked_for_the_subscribers_video_estimate_and_audio_for_nothing() -> None:
    # issue 18: Chromium's REMB is a video estimate (audio is outside it); the video publisher is asked for
    # it less only the SFU's own retransmissions, and an audio publisher is never asked
    room = Room("r4", SfuOptions(max_video_bitrate=2_000_000))
    red, blue = Peer("red"), Peer("blue")
    video_asks: list[int] = []
    audio_asks: list[int] = []
    hooks.watch_remb(red.pc.getTransceivers()[1].sender, video_asks.append)
    hooks.watch_remb(red.pc.getTransceivers()[0].sender, audio_asks.append)
    force_remb(blue.pc.getTransceivers()[1].receiver, 500_000)
    force_remb(blue.pc.getTransceivers()[0].receiver, 500_000)
    try:
        a = await connect(room, "a", "practitioner", red)
        await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video()) == "red"
        (outlet,) = room.participants[1]._outlets.values()
        await eventually(lambda: a.producers["camera"].sent_estimate is not None
                         and a.producers["camera"].sent_estimate <= 500_000)
        await asyncio.sleep(1.2)  # two budget windows with audio flowing on the leg
        asked = a.producers["camera"].estimate()
        resent = 8 * sum(e.retransmitted_octets for e in outlet.budget._video)
        assert outlet.budget.overhead <= resent  # only what the SFU resent, if anything, came off
        assert asked is not None and 500_000 - outlet.budget.overhead - 1 <= asked <= 500_000
        # an audio publisher is never asked for a bitrate (its REMB would overrule the video's)
        assert a.producers["mic"].sent_estimate is None and not audio_asks
        assert any(abs(b - asked) <= asked >> 17 for b in video_asks)  # REMB's 18-bit mantissa rounds it
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_heavy_loss_on_the_subscribers_leg_caps_what_the_publisher_is_asked() -> None:
    # issue 18: a full drop-tail queue loses packets without growing the delay a REMB reacts to; the
    # subscriber's receiver reports show it, and the SFU runs the loss-based half of congestion control
    room = Room("r5", SfuOptions(max_video_bitrate=2_000_000))
    red, blue = Peer("red"), Peer("blue")
    try:
        a = await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video()) == "red"
        consumer, camera = b.consumers["camera"], a.producers["camera"]
        await eventually(lambda: camera.estimate() is not None)
        assert consumer.loss_ceiling is None  # a clean leg: loss does not limit it
        # 40 % of what the SFU sends the subscriber is lost, its retransmissions too
        assert b.pc is not None
        connection = b.pc.getTransceivers()[0].receiver.transport.transport._connection
        dropped = {"in": 0, "out": 0}
        for protocol in connection._protocols:
            drop_sent(protocol, 0.4, random.Random(3), dropped)
        ceiling = await eventually(lambda: consumer.loss_ceiling)
        assert dropped["out"] > 10
        # the publisher is asked for no more than the ceiling, below the 2 Mbit/s the room allows
        estimate = camera.estimate()
        assert estimate is not None and estimate <= ceiling < 2_000_000
        assert camera.sent_estimate is not None and camera.sent_estimate <= ceiling
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
