"""Private hooks into aiortc 1.16's RTCRtpReceiver that turn it into an SFU ingress.

aiortc has no public API for encoded frames or packets (aiortc#55, #449).
The receiver's jitter buffer is replaced by a `PacketTap` that hands every
accepted packet to the producer (sfu/rtp_forward.py).  When a frame sink
wants whole frames, the tap also feeds a `MarkerJitterBuffer`, and the
receiver's `__decoder_queue` is a `FrameSink` that delivers frames straight
to the producer, so no decoder is ever created and no thread hop is paid.
NACK, RTX, REMB and receiver reports keep working because the rest of the
receiver runs unchanged.  `tests/unit/test_sfu_hooks.py` pins these private names.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable
from typing import Any, Callable

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unpack_remb_fci

from .repair import NackSchedule
from .rtp_forward import PacketTap

Deliver = Callable[[str, JitterFrame], None]


class FrameSink:
    """Stands in for the receiver's decoder queue (a `queue.Queue`)."""

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver
        self._stopped = threading.Event()

    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is None:  # the receiver stops its (idle) decoder thread
            self._stopped.set()
            return
        codec, frame = item
        self.deliver(codec.name.lower(), frame)

    def get(self) -> None:
        # the receiver's decoder thread waits here, idle, until the receiver stops
        self._stopped.wait()
        return None


class MarkerJitterBuffer(JitterBuffer):
    """Releases a video frame as soon as it is complete (its marker packet is in).

    aiortc's buffer only closes a frame when the next one starts: one frame of
    delay, up to a second for a low-rate screen share.  It also waits forever
    for a lost packet; here a frame still incomplete once the stream is
    `give_up` ticks further is dropped, a keyframe is asked for (PLI) and the
    frames that depend on the lost one are skipped until it comes.
    """

    def __init__(self, capacity: int, keyframe: Callable[[bytes], bool],
                 emit: Callable[[JitterFrame], None], give_up: int = 18000) -> None:
        super().__init__(capacity=capacity, is_video=True)
        self._is_keyframe = keyframe
        self._emit = emit
        self._give_up = give_up  # 200 ms of media time at 90 kHz
        self._waiting_for_keyframe = False
        self.frames_dropped = 0

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        """Emit every frame completed by this packet, in order; never returns one.

        The receiver can take one frame per packet, but a repaired gap may
        complete several at once: holding them back would delay the stream
        for good, so frames go to `emit` instead.
        """
        pli, frame = super().add(packet)
        frames = [frame] if frame is not None else []
        frames += self._drain()
        if not frames and self._origin_is_stale(packet.timestamp):
            self._drop_origin_frame()
            self._waiting_for_keyframe = True
            pli = True
            frames = self._drain()
        for frame in frames:
            if self._waiting_for_keyframe:
                if not self._is_keyframe(frame.data):
                    self.frames_dropped += 1
                    continue
                self._waiting_for_keyframe = False
            self._emit(frame)
        return pli, None

    def _drain(self) -> list[JitterFrame]:
        frames = []
        while self._origin is not None and (frame := self._complete_frame_at_origin()) is not None:
            frames.append(frame)
        return frames

    def _packet_at(self, n: int) -> RtpPacket | None:
        return self._packets[(self._origin + n) % self._capacity]  # type: ignore[operator]

    def _complete_frame_at_origin(self) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        timestamp = None
        for n in range(self._capacity):
            p = self._packet_at(n)
            if p is None or (timestamp is not None and p.timestamp != timestamp):
                return None
            timestamp = p.timestamp
            packets.append(p)
            if p.marker:
                self.remove(n + 1)
                return JitterFrame(b"".join(x._data for x in packets), p.timestamp)  # type: ignore[attr-defined]
        return None

    def _oldest_timestamp(self) -> int | None:
        for n in range(self._capacity):
            p = self._packet_at(n)
            if p is not None:
                return p.timestamp
        return None

    def _origin_is_stale(self, newest: int) -> bool:
        oldest = self._oldest_timestamp()
        if oldest is None:
            return False
        ahead = (newest - oldest) & 0xFFFFFFFF
        return self._give_up < ahead < 0x80000000

    def _drop_origin_frame(self) -> None:
        # remove packets up to the start of the next frame after the oldest one
        oldest = None
        for n in range(self._capacity):
            p = self._packet_at(n)
            if p is None:
                continue
            if oldest is None:
                oldest = p.timestamp
            elif p.timestamp != oldest:
                self.remove(n)
                self.frames_dropped += 1
                return
        self.remove(self._capacity)


class AudioPassBuffer(JitterBuffer):
    """Releases each audio packet at once; the subscriber's own jitter buffer smooths.

    aiortc's audio buffer prefetches 4 packets (80 ms) before releasing one.
    """

    def __init__(self) -> None:
        super().__init__(capacity=16)
        self._last_timestamp: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        last = self._last_timestamp
        # drop a late duplicate or reordered packet (32-bit wrap-aware)
        if last is not None and ((packet.timestamp - last) & 0xFFFFFFFF) >= 0x80000000:
            return False, None
        if last is not None and packet.timestamp == last:
            return False, None
        self._last_timestamp = packet.timestamp
        return False, JitterFrame(packet._data, packet.timestamp)  # type: ignore[attr-defined]


def attach(receiver: RTCRtpReceiver, kind: str, on_packet: Callable[[RtpPacket], None]) -> PacketTap:
    """Make `receiver` hand every media packet it accepts to `on_packet`, at once.

    Must be called before the receiver starts (before setRemoteDescription).
    No frame is assembled until `assemble_frames` is called.
    """
    # the receiver's decoder thread waits on this until the receiver stops
    tap = PacketTap(on_packet)
    receiver._RTCRtpReceiver__decoder_queue = tap.sink = FrameSink(lambda codec, frame: None)  # type: ignore[attr-defined]
    _route_rtx(receiver)
    receiver._RTCRtpReceiver__jitter_buffer = tap  # type: ignore[attr-defined]
    return tap


def assemble_frames(receiver: RTCRtpReceiver, kind: str, tap: PacketTap, deliver: Deliver,
                    keyframe: Callable[[bytes], bool]) -> None:
    """Also re-assemble the packets `tap` sees into encoded frames, given to `deliver` with low latency."""
    tap.sink.deliver = deliver
    if kind != "video":
        tap.frames = AudioPassBuffer()
        return
    mapper = receiver._RTCRtpReceiver__timestamp_mapper  # type: ignore[attr-defined]
    codecs = receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]

    def emit(frame: JitterFrame) -> None:
        # what the receiver does with a frame it gets back, minus the decoder thread
        frame.timestamp = mapper.map(frame.timestamp)
        codec = next((c.name.lower() for c in codecs.values() if c.name.lower() != "rtx"), "vp8")
        deliver(codec, frame)

    tap.frames = MarkerJitterBuffer(capacity=512, keyframe=keyframe, emit=emit)


def _route_rtx(receiver: RTCRtpReceiver) -> None:
    # aiortc's router learns an unknown SSRC from its payload type only when one
    # receiver has that type; with two video sections (camera, screen) every
    # retransmission (RTX) was dropped, so no loss was ever repaired
    receive = receiver.receive

    async def receive_and_route_rtx(parameters: Any) -> None:
        await receive(parameters)
        router = receiver.transport._rtp_router
        for rtx_ssrc in receiver._RTCRtpReceiver__rtx_ssrc:  # type: ignore[attr-defined]
            router.ssrc_table[rtx_ssrc] = receiver

    receiver.receive = receive_and_route_rtx  # type: ignore[method-assign]


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The SSRCs the receiver got media from lately (retransmission streams left out)."""
    rtx = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    return [s.source for s in receiver.getSynchronizationSources() if s.source not in rtx]


def stream_statistics(receiver: RTCRtpReceiver) -> list[Any]:
    """aiortc's per-SSRC reception statistics for the media streams (not RTX).

    `getStats()` cannot be used: it gives every SSRC of a receiver the same id,
    so the RTX stream's figures replace the media stream's.
    """
    streams = receiver._RTCRtpReceiver__remote_streams  # type: ignore[attr-defined]
    rtx = receiver._RTCRtpReceiver__rtx_ssrc  # type: ignore[attr-defined]
    return [stream for ssrc, stream in list(streams.items()) if ssrc not in rtx]


async def request_keyframe(receiver: RTCRtpReceiver) -> int:
    """Send a PLI for every media SSRC of `receiver`; returns how many were sent."""
    ssrcs = media_ssrcs(receiver)
    for ssrc in ssrcs:
        await receiver._send_rtcp_pli(ssrc)
    return len(ssrcs)


def rewrite_remb(receiver: RTCRtpReceiver, rewrite: Callable[[int], int]) -> None:
    """Pass every REMB the receiver sends upstream through `rewrite(bitrate)`.

    aiortc's receiver estimates the publisher's bandwidth and sends REMB on its
    own; the SFU lowers it to the config cap and the subscribers' estimates.
    """
    send = receiver._send_rtcp

    async def send_rtcp(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                pass
            else:
                packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=packet.ssrc, media_ssrc=0,
                                        fci=pack_remb_fci(rewrite(bitrate), ssrcs))
        await send(packet)

    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]
    receiver._sfu_send_rtcp_raw = send  # type: ignore[attr-defined]  # for send_remb


async def send_remb(receiver: RTCRtpReceiver, bitrate: int) -> bool:
    """Send a REMB for the receiver's active SSRCs now; False if none is known yet."""
    rtcp_ssrc = receiver._RTCRtpReceiver__rtcp_ssrc  # type: ignore[attr-defined]
    ssrcs = media_ssrcs(receiver)
    if rtcp_ssrc is None or not ssrcs:
        return False
    # not through rewrite_remb's wrapper: this bitrate is already the one wanted
    send = getattr(receiver, "_sfu_send_rtcp_raw", receiver._send_rtcp)
    await send(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, ssrcs)))
    return True


def watch_remb(sender: RTCRtpSender, on_remb: Callable[[int], None]) -> None:
    """Call `on_remb(bitrate)` for every REMB the subscriber sends about this sender."""
    handle = sender._handle_rtcp_packet

    async def handle_rtcp(packet: Any) -> None:
        await handle(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            if sender._ssrc in ssrcs:
                on_remb(bitrate)

    sender._handle_rtcp_packet = handle_rtcp  # type: ignore[method-assign]


class NackRetrier:
    """Asks the publisher for missing packets when `NackSchedule` says so.

    aiortc NACKs every missing packet each time a new gap appears, and never
    otherwise: a lost retransmission stayed lost until the next gap.  Here a
    packet is asked for once seen missing, then again after about one round
    trip (`rtt()`, seconds, None if unknown) while still missing, a bounded
    number of times.  Calls `on_nack(n)` for every n packets asked, and
    `on_outage()` when a gap is too long to be worth retransmitting.
    """

    def __init__(self, receiver: RTCRtpReceiver, on_nack: Callable[[int], None],
                 rtt: Callable[[], float | None] = lambda: None, schedule: NackSchedule | None = None,
                 on_outage: Callable[[], object] = lambda: None) -> None:
        self._receiver = receiver
        self._send_nack = receiver._send_rtcp_nack
        self._on_nack = on_nack
        self._on_outage = on_outage
        self._rtt = rtt
        self.schedule = schedule or NackSchedule()
        self._ssrc = 0
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        receiver._send_rtcp_nack = self._first_nack  # type: ignore[method-assign]

    async def _first_nack(self, media_ssrc: int, lost: list[int]) -> None:
        self._ssrc = media_ssrc
        await self._nack(lost)

    async def _nack(self, missing: Iterable[int]) -> None:
        loop = asyncio.get_running_loop()
        rtt = self._rtt()
        bursts = self.schedule.bursts
        lost = self.schedule.due(missing, loop.time(), rtt)
        if self.schedule.bursts != bursts:
            self._on_outage()
        if lost:
            self._on_nack(len(lost))
            await self._send_nack(self._ssrc, lost)
        self._arm(loop, rtt)

    def _arm(self, loop: asyncio.AbstractEventLoop, rtt: float | None) -> None:
        at = self.schedule.next_time(rtt)
        if at is None:
            return
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._again)

    def _again(self) -> None:
        self._timer = None
        missing = self._receiver._RTCRtpReceiver__nack_generator.missing  # type: ignore[attr-defined]
        self._task = asyncio.ensure_future(self._nack(set(missing)))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def sender_rtt(sender: RTCRtpSender) -> float | None:
    """The round-trip time (s) aiortc's sender measured from the subscriber's receiver reports.

    Its getStats() files the figure under the reporter's SSRC, not the sender's.
    """
    rtt = sender._RTCRtpSender__rtt  # type: ignore[attr-defined]
    return float(rtt) if rtt is not None else None


def count_retransmits(sender: RTCRtpSender, on_nack: Callable[[], None]) -> None:
    """Call `on_nack()` for every packet the subscriber asks this sender to resend."""
    retransmit = sender._retransmit

    async def retransmit_counted(sequence_number: int) -> None:
        on_nack()
        await retransmit(sequence_number)

    sender._retransmit = retransmit_counted  # type: ignore[method-assign]
