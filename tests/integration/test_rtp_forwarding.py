"""RTP-level forwarding over real aiortc peers on loopback: what the subscriber's receiver sees."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from typing import Any

import av
from helpers.loss import drop_sent
from helpers.media_peers import Peer, connect, dominant_colour

from recorder.depacketize import Depacketizer, Frame
from sfu import Participant, Producer, Room, SfuOptions
from sfu.packet import Packet
from sfu.stats import participant_stats

NTP_EPOCH = 2208988800  # 1900 to 1970, seconds


def record_rtp(peer: Peer, index: int) -> list[tuple[int, int, int, int]]:
    """(ssrc, payload type, sequence number, timestamp) of every RTP packet a section receives."""
    receiver = peer.pc.getTransceivers()[index].receiver
    seen: list[tuple[int, int, int, int]] = []
    handle = receiver._handle_rtp_packet

    async def recording(packet: Any, arrival_time_ms: int) -> None:
        seen.append((packet.ssrc, packet.payload_type, packet.sequence_number, packet.timestamp))
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = recording  # type: ignore[method-assign]
    return seen


async def eventually(check: Any, timeout: float = 15.0) -> Any:
    for _ in range(int(timeout / 0.05)):
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_a_publisher_reconnecting_leaves_one_continuous_stream_for_the_subscriber() -> None:
    room = Room("switch", SfuOptions())
    red, blue, green = Peer("red"), Peer("blue"), Peer("green")
    try:
        a = await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        camera_in = record_rtp(blue, 1)
        assert dominant_colour(await blue.wait_video()) == "red"
        old_producer = a.producers["camera"]
        # the practitioner reloads: a new peer connection, new SSRCs and sequence numbers
        await green.accept(await a.handle_offer(await green.offer()))
        await red.close()
        assert a.producers["camera"] is not old_producer
        await eventually(lambda: blue.video_frames and dominant_colour(blue.video_frames[-1]) == "green")
        await blue.wait_video(count=5)
        media = [p for p in camera_in if p[1] == camera_in[0][1]]  # the media payload type, not RTX
        sender = b.senders["camera"]
        assert {ssrc for ssrc, *_ in media} == {sender._ssrc}  # one SSRC: the subscriber's leg
        steps = [(s2 - s1) & 0xFFFF for (_, _, s1, _), (_, _, s2, _) in zip(media, media[1:])]
        stamps = [(t2 - t1) & 0xFFFFFFFF for (_, _, _, t1), (_, _, _, t2) in zip(media, media[1:])]
        # sequence numbers go on by one (loopback: no loss, no reordering), timestamps never go back
        assert set(steps) == {1}, sorted(set(steps))
        assert all(step < 0x80000000 for step in stamps)
        assert b.consumers["camera"].producer is a.producers["camera"]
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close(), green.close())


def drop_towards(participant: Participant, rate: float, rng: random.Random) -> dict[str, int]:
    """Drop `rate` of the RTP packets the SFU sends to `participant` (user space, no netem)."""
    dropped = {"out": 0}
    assert participant.pc is not None
    connection = participant.pc.getTransceivers()[0].receiver.transport.transport._connection
    for protocol in connection._protocols:
        drop_sent(protocol, rate, rng, dropped)
    return dropped


async def test_the_sfus_receivers_end_aiortcs_idle_decoder_threads_and_media_still_flows() -> None:
    # issue 14: aiortc starts a decoder thread per receiver; the fast path never feeds it (128 idle
    # threads at 32 rooms). The test peers' own receivers decode, so only the SFU's are looked at.
    room = Room("threads", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        a = await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        assert dominant_colour(await blue.wait_video()) == "red"
        assert dominant_colour(await red.wait_video()) == "blue"
        queues = [p.receiver._RTCRtpReceiver__decoder_queue for p in (*a.producers.values(), *b.producers.values())]
        assert len(queues) >= 4  # camera and microphone of each

        def sfu_decoders() -> list[threading.Thread]:
            return [t for t in threading.enumerate() if t.name.endswith("-decoder")
                    and any(q is arg for q in queues for arg in getattr(t, "_args", ()))]

        await eventually(lambda: not sfu_decoders())
        peers_decoders = [t for t in threading.enumerate() if t.name.endswith("-decoder")]
        assert len(peers_decoders) >= 4  # the peers' own receivers still decode: the check can see threads
        before = len(blue.video_pts)
        await eventually(lambda: len(blue.video_pts) > before + 10)
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_the_subscribers_nacks_are_answered_with_rtx_from_the_history() -> None:
    room = Room("rtx", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        camera_in = record_rtp(blue, 1)
        await blue.wait_video()
        # aiortc routes an RTX SSRC by payload type, which two video sections share:
        # point it at the camera's receiver, as sfu/ingress.py does for the SFU
        camera = blue.pc.getTransceivers()[1].receiver
        camera.transport._rtp_router.ssrc_table[b.senders["camera"]._rtx_ssrc] = camera
        dropped = drop_towards(b, 0.03, random.Random(3))
        egress = b.consumers["camera"].egress
        assert egress is not None
        await eventually(lambda: egress.retransmitted >= 5)
        sender = b.senders["camera"]
        rtx = [p for p in camera_in if p[0] == sender._rtx_ssrc]
        assert rtx and dropped["out"] > 0
        assert b.consumers["camera"].nacks_received >= egress.retransmitted
        before = len(blue.video_pts)
        await eventually(lambda: len(blue.video_pts) > before + 10)  # still decoding
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_sender_reports_carry_the_forwarded_counts() -> None:
    room = Room("sr", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        await blue.wait_video()
        egress = b.consumers["camera"].egress
        assert egress is not None

        async def remote_outbound() -> Any:
            stats = await blue.pc.getStats()
            return next((s for s in stats.values() if s.type == "remote-outbound-rtp" and s.kind == "video"
                         and s.ssrc == b.senders["camera"]._ssrc), None)

        for _ in range(60):  # the sender's RTCP loop reports every 0.5-1.5 s
            report = await remote_outbound()
            if report is not None and report.packetsSent > 0:
                break
            await asyncio.sleep(0.1)
        assert report is not None and 0 < report.packetsSent <= egress.packets
        assert report.bytesSent > 0
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


class FrameCollector:
    """A packet subscriber that assembles frames, as the recorder does (recorder/depacketize.py)."""

    def __init__(self) -> None:
        self.depacketizer = Depacketizer("vp8", 90000)
        self.frames: list[Frame] = []
        self.unbound = False

    def on_packet(self, producer: Producer, packet: Packet, key: bool, now: float) -> None:
        self.frames += self.depacketizer.add(packet)
        if self.depacketizer.need_keyframe:
            self.depacketizer.need_keyframe = False
            producer.request_keyframe()

    def unbind(self, producer: Producer) -> None:
        self.unbound = True


async def test_a_packet_subscriber_assembles_whole_frames_and_the_producer_exposes_sender_reports() -> None:
    room = Room("sink", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        a = await connect(room, "a", "practitioner", red)
        await connect(room, "b", "patient", blue)
        await blue.wait_video()
        camera = a.producers["camera"]
        collector = FrameCollector()
        camera.add_consumer(collector)
        camera.request_keyframe()  # the collector's first frame must be a keyframe
        await eventually(lambda: len(collector.frames) >= 5)
        assert collector.frames[0].keyframe
        decoder = av.CodecContext.create("vp8", "r")
        pictures = [p for f in collector.frames for p in decoder.decode(av.Packet(f.data))]
        assert len(pictures) == len(collector.frames) and dominant_colour(pictures[-1]) == "red"
        # the publisher's sender reports: its wallclock (NTP) against its RTP clock
        report = await eventually(lambda: camera.sender_report)
        assert report.clock_rate == 90000
        sender = red.pc.getTransceivers()[1].sender
        ntp_now = time.time() + NTP_EPOCH
        frame = collector.frames[-1]
        # aiortc's sender stamps its SRs with time.time(): a frame's capture time is within a second of now
        assert abs(report.wallclock(frame.timestamp) - ntp_now) < 1.0
        assert report.ssrc == sender._ssrc
        camera.remove_consumer(collector)
        count = len(collector.frames)
        await blue.wait_video(count=5)
        await asyncio.sleep(0.3)
        assert len(collector.frames) == count
        assert dominant_colour(blue.video_frames[-1]) == "red"  # packets still flow
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())


async def test_the_round_trip_follows_a_leg_that_just_got_slower() -> None:
    # issue 18: aiortc smooths each sender's round trip with a weight of 0.85 on the past; on a leg
    # whose delay went from 1 to 155 ms the SFU still used 115 ms a minute later, and its NACKs
    # towards that publisher went out before the retransmissions could come back
    from aiortc.rtp import RtcpRrPacket

    room = Room("rtt", SfuOptions())
    red, blue = Peer("red"), Peer("blue")
    try:
        await connect(room, "a", "practitioner", red)
        b = await connect(room, "b", "patient", blue)
        await blue.wait_video()
        fast = await eventually(b.rtt)
        assert fast < 0.1  # loopback, a busy event loop's lag at most
        delay = 0.0
        for transceiver in blue.pc.getTransceivers():  # blue's receiver reports now take 200 ms more
            receiver = transceiver.receiver
            send = receiver._send_rtcp

            async def slow(packet: Any, send: Any = send) -> None:
                if isinstance(packet, RtcpRrPacket):
                    await asyncio.sleep(delay)
                await send(packet)

            receiver._send_rtcp = slow  # type: ignore[method-assign]
        delay = 0.2
        # a receiver report goes out every 0.5-1.5 s: the first one sent after the change is believed
        slower = await eventually(lambda: (r := b.rtt()) is not None and r > 0.18 and r, timeout=5.0)
        assert slower < 0.5  # the 200 ms, and the event loops' lag on a busy machine
        stats = await participant_stats(b)
        assert 180 < stats["rtt_ms"] < 500
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
