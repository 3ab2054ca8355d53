"""Producer: one incoming track of a participant, fanned out to consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from pyee.asyncio import AsyncIOEventEmitter

from . import receiver_hooks
from .frames import AUDIO_TIME_BASE, VIDEO_TIME_BASE, EncodedFrame, is_keyframe

if TYPE_CHECKING:
    from .consumer import Consumer

logger = logging.getLogger(__name__)


class Producer(AsyncIOEventEmitter):
    """Receives encoded frames from one `RTCRtpReceiver` and hands them to consumers.

    Emits "close" once.
    """

    def __init__(self, id: str, kind: str, source: str, receiver: RTCRtpReceiver,
                 keyframe_request_interval: float) -> None:
        super().__init__()
        self.id = id
        self.kind = kind
        self.source = source
        self.closed = False
        self.frames = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self._receiver = receiver
        self._time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self._consumers: list[Consumer] = []
        self._interval = keyframe_request_interval
        self._last_request = -1e9
        self._tasks: set[asyncio.Task[int]] = set()
        receiver_hooks.attach(receiver, kind, self._on_frame)

    def __repr__(self) -> str:
        return f"Producer({self.id}, {self.source})"

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        return tuple(self._consumers)

    def add_consumer(self, consumer: Consumer) -> None:
        if consumer not in self._consumers:
            self._consumers.append(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)

    def _on_frame(self, codec: str, jframe: JitterFrame) -> None:
        # the hot path: called on the event loop for every re-assembled frame
        key = is_keyframe(codec, jframe.data)
        frame = EncodedFrame(jframe.data, jframe.timestamp, self._time_base, key)
        self.frames += 1
        if key and self.kind == "video":
            self.keyframes += 1
        for consumer in self._consumers:
            consumer.push(self, frame)

    def request_keyframe(self) -> bool:
        """Ask the publisher for a keyframe, at most once per interval; True if sent."""
        if self.kind != "video" or self.closed:
            return False
        now = time.monotonic()
        if now - self._last_request < self._interval:
            return False
        self._last_request = now
        self.keyframe_requests += 1
        task = asyncio.ensure_future(receiver_hooks.request_keyframe(self._receiver))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def close(self) -> None:
        """Detach from consumers; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        for consumer in list(self._consumers):
            consumer.unbind(self)
        self._consumers.clear()
        logger.debug("%r closed after %d frames", self, self.frames)
        self.emit("close")
