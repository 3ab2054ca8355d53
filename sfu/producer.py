"""Producer: one incoming track of a participant, fanned out to consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Protocol

from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import RtpPacket
from pyee.asyncio import AsyncIOEventEmitter

from . import receiver_hooks, red
from .frames import AUDIO_TIME_BASE, VIDEO_TIME_BASE, EncodedFrame, is_keyframe
from .repair import KeyframeRequests
from .rtp_forward import is_keyframe_start

FrameSink = Callable[[EncodedFrame], None]
# packets kept for consumers opening their gate (~1 s of 1 Mbit/s video)
RECENT = 128


logger = logging.getLogger(__name__)


class PacketSubscriber(Protocol):
    """What a producer hands its packets to (a consumer; the producer knows nothing else of it)."""

    def on_packet(self, producer: Producer, packet: RtpPacket, key: bool, now: float) -> None:
        """One packet, in arrival order; `key`: it starts a keyframe (always true for audio)."""

    def unbind(self, producer: Producer) -> None:
        """The producer is closing: stop expecting its packets."""


class Producer(AsyncIOEventEmitter):
    """Receives RTP packets from one `RTCRtpReceiver` and hands each to its consumers.

    Whole frames are assembled only for frame sinks (`add_frame_sink`, e.g. a
    recorder).  Emits "close" once.
    """

    def __init__(self, id: str, kind: str, source: str, receiver: RTCRtpReceiver,
                 keyframe_request_interval: float, max_bitrate: int = 0,
                 rtt: Callable[[], float | None] = lambda: None) -> None:
        super().__init__()
        self.id = id
        self.kind = kind
        self.source = source
        self.closed = False
        self.frames = 0
        self.keyframes = 0
        self.packets = 0
        # a new SSRC from the publisher starts a new stream: consumers wait for a keyframe
        self.epoch = 0
        self._ssrc: int | None = None
        self._seen = [-1] * 1024  # sequence numbers forwarded lately (duplicates are not)
        # the latest packets, by sequence number: a consumer opening its gate at a keyframe
        # sends those that overtook the keyframe's first packet, or the subscriber gets a hole
        self._recent: list[RtpPacket | None] = [None] * RECENT
        self._codec_names: dict[int, str] = {}
        self._frame_sinks: list[FrameSink] = []
        self.keyframe_requests = 0
        self.nacks_sent = 0
        self.bytes = 0
        self._receiver = receiver
        self._time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self._consumers: list[PacketSubscriber] = []
        self._keyframe_requests = KeyframeRequests(keyframe_request_interval)
        self._keyframe_timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        # bandwidth: the lowest of the cap, our own estimate and the subscribers' wins
        self.max_bitrate = max_bitrate
        self.own_estimate: int | None = None
        self.sent_estimate: int | None = None
        self._subscriber_estimates: dict[int, int] = {}
        self._nacks: receiver_hooks.NackRetrier | None = None
        self._tap = receiver_hooks.attach(receiver, kind, self._on_packet)
        if kind == "video":
            receiver_hooks.rewrite_remb(receiver, self._rewrite_remb)
            self._nacks = receiver_hooks.NackRetrier(receiver, self._on_nack, rtt, on_outage=self.request_keyframe)

    def __repr__(self) -> str:
        return f"Producer({self.id}, {self.source})"

    @property
    def receiver(self) -> RTCRtpReceiver:
        return self._receiver

    def _is_keyframe(self, data: bytes) -> bool:
        codecs = self._receiver._RTCRtpReceiver__codecs  # type: ignore[attr-defined]
        name = next((c.name.lower() for c in codecs.values() if c.name.lower() != "rtx"), "vp8")
        return is_keyframe(name, data)

    def codec_name(self, payload_type: int) -> str:
        """The lower-case name of the codec the publisher sends as `payload_type` ("" if unknown)."""
        known = self._codec_names.get(payload_type)
        if known:  # ("" is looked up again: the receiver may not know its codecs yet)
            return known
        codec = self._receiver._RTCRtpReceiver__codecs.get(payload_type)  # type: ignore[attr-defined]
        name: str = codec.name.lower() if codec is not None else ""
        self._codec_names[payload_type] = name
        return name

    def _on_nack(self, count: int) -> None:
        self.nacks_sent += count

    @property
    def consumers(self) -> tuple[PacketSubscriber, ...]:
        return tuple(self._consumers)

    def add_consumer(self, consumer: PacketSubscriber) -> None:
        if consumer not in self._consumers:
            self._consumers.append(consumer)

    def remove_consumer(self, consumer: PacketSubscriber) -> None:
        if consumer in self._consumers:
            self._consumers.remove(consumer)
        self._subscriber_estimates.pop(id(consumer), None)

    def _on_packet(self, packet: RtpPacket) -> None:
        # the hot path: every media packet the receiver accepts, RTX already unwrapped
        seq = packet.sequence_number
        if packet.ssrc != self._ssrc:
            self._ssrc = packet.ssrc
            self.epoch += 1
            self._seen = [-1] * 1024
            self._recent = [None] * RECENT
        elif self._seen[seq & 1023] == seq:
            return  # a retransmission of a packet already forwarded
        self._seen[seq & 1023] = seq
        self._recent[seq % RECENT] = packet
        self.packets += 1
        self.bytes += len(packet.payload)
        if self.kind == "video":
            codec = self.codec_name(packet.payload_type)
            key = is_keyframe_start(codec, packet.payload)
            if key:
                self.keyframes += 1
                self._keyframe_requests.keyframe_arrived(time.monotonic())
            if packet.marker:
                self.frames += 1
        else:
            key = True
            self.frames += 1
        now = time.time()
        for consumer in self._consumers:
            consumer.on_packet(self, packet, key, now)

    def received_after(self, packet: RtpPacket) -> Iterator[RtpPacket]:
        """The packets that follow `packet` and already came (they overtook it), in order."""
        seq = packet.sequence_number
        for _ in range(RECENT - 1):
            seq = (seq + 1) & 0xFFFF
            after = self._recent[seq % RECENT]
            if after is None or after.sequence_number != seq or after.ssrc != packet.ssrc:
                return
            yield after

    def add_frame_sink(self, sink: FrameSink) -> None:
        """Also deliver whole encoded frames to `sink` (assembled only while one is attached)."""
        if not self._frame_sinks:
            receiver_hooks.assemble_frames(self._receiver, self.kind, self._tap, self._on_frame, self._is_keyframe)
            self.request_keyframe()
        self._frame_sinks.append(sink)

    def remove_frame_sink(self, sink: FrameSink) -> None:
        if sink in self._frame_sinks:
            self._frame_sinks.remove(sink)
        if not self._frame_sinks:
            self._tap.frames = None

    def _on_frame(self, codec: str, jframe: JitterFrame) -> None:
        data = jframe.data
        if codec == "red":  # frame sinks decode Opus: the primary block is the packet's own audio
            block = red.primary(data)
            if block is None:
                return
            data = block[1]
        frame = EncodedFrame(data, jframe.timestamp, self._time_base, is_keyframe(codec, data))
        for sink in list(self._frame_sinks):
            sink(frame)

    def request_keyframe(self) -> bool:
        """Ask the publisher for a keyframe; True if sent now.

        Requests are coalesced (`KeyframeRequests`): one per interval, and one
        asked for in between is sent when the interval ends unless a keyframe came.
        """
        if self.kind != "video" or self.closed or self._ssrc is None:
            return False  # (nothing received yet: the first packets bring a keyframe anyway)
        if self._keyframe_requests.request(time.monotonic()):
            self._send_keyframe_request()
            return True
        at = self._keyframe_requests.pending_at
        if at is not None and self._keyframe_timer is None:
            self._keyframe_timer = asyncio.get_running_loop().call_later(
                max(0.0, at - time.monotonic()), self._pending_keyframe_request)
        return False

    def _pending_keyframe_request(self) -> None:
        self._keyframe_timer = None
        if not self.closed and self._keyframe_requests.fire(time.monotonic()):
            self._send_keyframe_request()

    def _send_keyframe_request(self) -> None:
        self.keyframe_requests += 1
        self._spawn(receiver_hooks.request_keyframe(self._receiver))

    def estimate(self, own: int | None = None) -> int | None:
        """The bitrate to ask of the publisher: the lowest of cap, own and subscribers'."""
        known = [b for b in (own, self.max_bitrate or None, *self._subscriber_estimates.values()) if b]
        return min(known) if known else None

    def _rewrite_remb(self, bitrate: int) -> int:
        self.own_estimate = bitrate
        self.sent_estimate = self.estimate(bitrate) or bitrate
        return self.sent_estimate

    def on_subscriber_estimate(self, consumer: PacketSubscriber, bitrate: int) -> None:
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
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        for consumer in list(self._consumers):
            consumer.unbind(self)
        self._consumers.clear()
        self._frame_sinks.clear()
        self._tap.frames = None
        logger.debug("%r closed after %d frames", self, self.frames)
        self.emit("close")
