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
from aiortc.rtp import RtpPacket

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
