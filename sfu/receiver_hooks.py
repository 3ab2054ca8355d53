"""Private hooks into aiortc 1.16's RTCRtpReceiver that turn it into an SFU ingress.

aiortc has no public API for encoded frames (aiortc#55, #449).  The receiver
hands every re-assembled frame to `__decoder_queue.put((codec, frame))` on the
event loop; replacing that queue with `FrameSink` delivers frames straight to a
producer, so no decoder is ever created and no thread hop is paid.  NACK, RTX,
REMB and receiver reports keep working because the rest of the receiver runs
unchanged.  `tests/test_sfu_hooks.py` pins these private names.
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtpPacket, pack_remb_fci, unpack_remb_fci

Deliver = Callable[[str, JitterFrame], None]


class FrameSink:
    """Stands in for the receiver's decoder queue (a `queue.Queue`)."""

    def __init__(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._stopped = threading.Event()

    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is None:  # the receiver stops its (idle) decoder thread
            self._stopped.set()
            return
        codec, frame = item
        self._deliver(codec.name.lower(), frame)

    def get(self) -> None:
        # the receiver's decoder thread waits here, idle, until the receiver stops
        self._stopped.wait()
        return None


class MarkerJitterBuffer(JitterBuffer):
    """Releases a video frame as soon as it is complete (its marker packet is in).

    aiortc's buffer only closes a frame when the next one starts: one frame of
    delay, up to a second for a low-rate screen share.
    """

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli, frame = super().add(packet)
        if frame is None and self._origin is not None:
            frame = self._complete_frame_at_origin()
        return pli, frame

    def _complete_frame_at_origin(self) -> JitterFrame | None:
        packets: list[RtpPacket] = []
        timestamp = None
        for n in range(self._capacity):
            p = self._packets[(self._origin + n) % self._capacity]  # type: ignore[operator]
            if p is None or (timestamp is not None and p.timestamp != timestamp):
                return None
            timestamp = p.timestamp
            packets.append(p)
            if p.marker:
                self.remove(n + 1)
                return JitterFrame(b"".join(x._data for x in packets), p.timestamp)  # type: ignore[attr-defined]
        return None


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


def attach(receiver: RTCRtpReceiver, kind: str, deliver: Deliver) -> None:
    """Make `receiver` deliver encoded frames to `deliver` with low latency.

    Must be called before the receiver starts (before setRemoteDescription).
    """
    receiver._RTCRtpReceiver__decoder_queue = FrameSink(deliver)  # type: ignore[attr-defined]
    receiver._RTCRtpReceiver__jitter_buffer = (  # type: ignore[attr-defined]
        MarkerJitterBuffer(capacity=512, is_video=True) if kind == "video" else AudioPassBuffer()
    )


async def request_keyframe(receiver: RTCRtpReceiver) -> int:
    """Send a PLI for every active SSRC of `receiver`; returns how many were sent."""
    sent = 0
    for source in receiver.getSynchronizationSources():
        await receiver._send_rtcp_pli(source.source)
        sent += 1
    return sent


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
    ssrcs = [s.source for s in receiver.getSynchronizationSources()]
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


def count_nacks(receiver: RTCRtpReceiver, on_nack: Callable[[int], None]) -> None:
    """Call `on_nack(n)` when the receiver asks the publisher to resend n packets."""
    send_nack = receiver._send_rtcp_nack

    async def send_rtcp_nack(media_ssrc: int, lost: list[int]) -> None:
        on_nack(len(lost))
        await send_nack(media_ssrc, lost)

    receiver._send_rtcp_nack = send_rtcp_nack  # type: ignore[method-assign]


def count_retransmits(sender: RTCRtpSender, on_nack: Callable[[], None]) -> None:
    """Call `on_nack()` for every packet the subscriber asks this sender to resend."""
    retransmit = sender._retransmit

    async def retransmit_counted(sequence_number: int) -> None:
        on_nack()
        await retransmit(sequence_number)

    sender._retransmit = retransmit_counted  # type: ignore[method-assign]
