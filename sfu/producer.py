"""Producer: one incoming track of a participant, fanned out to consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

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
                 keyframe_request_interval: float, max_bitrate: int = 0) -> None:
        super().__init__()
        self.id = id
        self.kind = kind
        self.source = source
        self.closed = False
        self.frames = 0
        self.keyframes = 0
        self.keyframe_requests = 0
        self.nacks_sent = 0
        self.bytes = 0
        self._receiver = receiver
        self._time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self._consumers: list[Consumer] = []
        # extra subscribers of every frame (the recorder); called on the event loop
        self._sinks: list[Callable[[EncodedFrame], None]] = []
        self._interval = keyframe_request_interval
        self._last_request = -1e9
        self._tasks: set[asyncio.Task[Any]] = set()
        # bandwidth: the lowest of the cap, our own estimate and the subscribers' wins
        self.max_bitrate = max_bitrate
        self.own_estimate: int | None = None
        self.sent_estimate: int | None = None
        self._subscriber_estimates: dict[int, int] = {}
        self._nacks: receiver_hooks.NackRetrier | None = None
        receiver_hooks.attach(receiver, kind, self._on_frame, self._is_keyframe)
        if kind == "video":
            receiver_hooks.rewrite_remb(receiver, self._rewrite_remb)
            self._nacks = receiver_hooks.NackRetrier(receiver, self._on_nack)

    def __repr__(self) -> str:
        return f"Producer({self.id}, {self.source})"

    @property
    def receiver(self) -> RTCRtpReceiver:
        return self._receiver

    def _is_keyframe(self, data: bytes) -> bool:
        codecs = self._receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        name = next((c.name.lower() for c in codecs.values() if c.name.lower() != "rtx"), "vp8")
        return is_keyframe(name, data)

    def _on_nack(self, count: int) -> None:
        self.nacks_sent += count

    @property
    def consumers(self) -> tuple[Consumer, ...]:
        return tuple(self._consumers)

    def add_consumer(self, consumer: Consumer) -> None:
        if consumer not in self._consumers:
            self._consumers.append(consumer)

    def remove_consumer(self, consumer: Consumer) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        self._subscriber_estimates.pop(id(consumer), None)

    def add_sink(self, sink: Callable[[EncodedFrame], None]) -> None:
        """Also hand every forwarded frame to `sink` (it must only queue the frame)."""
        if sink not in self._sinks:
            self._sinks.append(sink)

    def remove_sink(self, sink: Callable[[EncodedFrame], None]) -> None:
        if sink in self._sinks:
            self._sinks.remove(sink)

    def _on_frame(self, codec: str, jframe: JitterFrame) -> None:
        # the hot path: called on the event loop for every re-assembled frame
        key = is_keyframe(codec, jframe.data)
        frame = EncodedFrame(jframe.data, jframe.timestamp, self._time_base, key)
        self.frames += 1
        self.bytes += len(jframe.data)
        if key and self.kind == "video":
            self.keyframes += 1
        for consumer in self._consumers:
            consumer.push(self, frame)
        for sink in self._sinks:
            sink(frame)

    def request_keyframe(self) -> bool:
        """Ask the publisher for a keyframe, at most once per interval; True if sent."""
        if self.kind != "video" or self.closed:
            return False
        now = time.monotonic()
        if now - self._last_request < self._interval:
            return False
        self._last_request = now
        self.keyframe_requests += 1
        self._spawn(receiver_hooks.request_keyframe(self._receiver))
        return True

    def estimate(self, own: int | None = None) -> int | None:
        """The bitrate to ask of the publisher: the lowest of cap, own and subscribers'."""
        known = [b for b in (own, self.max_bitrate or None, *self._subscriber_estimates.values()) if b]
        return min(known) if known else None

    def _rewrite_remb(self, bitrate: int) -> int:
        self.own_estimate = bitrate
        self.sent_estimate = self.estimate(bitrate) or bitrate
        return self.sent_estimate

    def on_subscriber_estimate(self, consumer: Consumer, bitrate: int) -> None:
        """A subscriber reported its bandwidth (REMB); pass a drop on at once."""
        self._subscriber_estimates[id(consumer)] = bitrate
        wanted = self.estimate(self.own_estimate)
        if wanted is not None and (self.sent_estimate is None or wanted < 0.9 * self.sent_estimate):
            self.sent_estimate = wanted
            self._spawn(receiver_hooks.send_remb(self._receiver, wanted))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Detach from consumers; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        if self._nacks is not None:
            self._nacks.close()
        for consumer in list(self._consumers):
            consumer.unbind(self)
        self._consumers.clear()
        self._sinks.clear()
        logger.debug("%r closed after %d frames", self, self.frames)
        self.emit("close")
