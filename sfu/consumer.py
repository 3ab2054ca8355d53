"""Consumer: one outgoing track to one subscriber, fed by a producer."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .frames import AUDIO_TIME_BASE, VIDEO_TIME_BASE, EncodedFrame

if TYPE_CHECKING:
    from .producer import Producer

logger = logging.getLogger(__name__)

# pts step used to continue the timeline when the producer changes
_FRAME_STEP = {"video": 3000, "audio": 960}


class Consumer(MediaStreamTrack):
    """An outgoing track given to an `RTCRtpSender`, which only packetizes what it gets.

    The consumer outlives its producers: when the correspondent reloads or
    changes device, it is bound to the new producer, keeps the RTP timeline
    continuous and waits for a keyframe, so the subscriber never renegotiates.
    Video sends nothing until a keyframe, then flows; if the subscriber falls
    behind, the queue is dropped and the next keyframe is awaited.
    """

    def __init__(self, kind: str, source: str, codec: str, max_frames: int, max_delay: float = 0.5) -> None:
        super().__init__()
        self.kind = kind
        self.source = source
        self._codec = codec.lower()
        self._max = max_frames
        # media a queue may hold, in clock ticks (no Fraction maths per frame)
        self._max_ticks = int(max_delay / (VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE))
        self._queue: deque[EncodedFrame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._producer: Producer | None = None
        self._open = kind != "video"  # video waits for a keyframe
        self._offset = 0
        self._last_pts: int | None = None
        self._rebase = True
        self.frames_sent = 0
        self.frames_dropped = 0
        self.keyframe_requests = 0
        self.nacks_received = 0
        self.estimate: int | None = None

    def __repr__(self) -> str:
        return f"Consumer({self.source})"

    @property
    def producer(self) -> Producer | None:
        return self._producer

    def bind(self, producer: Producer) -> None:
        """Take frames from `producer` (replacing any previous one)."""
        if self._producer is producer:
            return
        if self._producer is not None:
            self._producer.remove_consumer(self)
        self._producer = producer
        self._rebase = True
        self._open = self.kind != "video"
        self._queue.clear()
        producer.add_consumer(self)
        producer.request_keyframe()

    def unbind(self, producer: Producer) -> None:
        if self._producer is producer:
            producer.remove_consumer(self)
            self._producer = None

    def on_estimate(self, bitrate: int) -> None:
        """The subscriber's bandwidth estimate (REMB) for this track."""
        self.estimate = bitrate
        if self._producer is not None:
            self._producer.on_subscriber_estimate(self, bitrate)

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (PLI/FIR): ask the publisher."""
        self.keyframe_requests += 1
        if self._producer is not None:
            self._producer.request_keyframe()

    def on_nack(self) -> None:
        self.nacks_received += 1

    def push(self, producer: Producer, frame: EncodedFrame) -> None:
        if not self._open:
            if not frame.keyframe:
                producer.request_keyframe()
                return
            self._open = True
        if len(self._queue) >= self._max or self._too_late(frame):
            # the subscriber's sender fell behind: stale media helps no one
            self.frames_dropped += len(self._queue)
            self._queue.clear()
            if self.kind == "video":
                self._open = frame.keyframe
                if not self._open:
                    producer.request_keyframe()
                    return
        if self._rebase:
            # continue our timeline one frame after the last one sent
            start = 0 if self._last_pts is None else self._last_pts + _FRAME_STEP[self.kind]
            self._offset = start - frame.pts
            self._rebase = False
        self._queue.append(frame)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _too_late(self, frame: EncodedFrame) -> bool:
        # more media time waiting than max_delay: drop rather than add latency
        return bool(self._queue) and frame.pts - self._queue[0].pts > self._max_ticks

    async def recv(self) -> Any:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter
        frame = self._queue.popleft()
        pts = frame.pts + self._offset
        self._last_pts = pts
        self.frames_sent += 1
        if self._codec == "h264":  # aiortc's H.264 packetizer insists on av.Packet
            packet = av.Packet(frame.data)
            packet.pts = pts
            packet.time_base = frame.time_base
            return packet
        return EncodedFrame(frame.data, pts, frame.time_base, frame.keyframe)

    def stop(self) -> None:
        """End the track (the sender stops); safe to call twice."""
        if self._producer is not None:
            self.unbind(self._producer)
        super().stop()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
