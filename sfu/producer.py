"""Producer: one incoming track of a participant, fanned out to consumers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from aiortc.rtcrtpreceiver import RTCRtpReceiver
from pyee.asyncio import AsyncIOEventEmitter

from . import aiortc_hooks as hooks
from . import playout
from .codecs import is_keyframe_start
from .frames import AUDIO_TIME_BASE, VIDEO_TIME_BASE
from .ingress import RtpStream
from .packet import Packet
from .repair import KeyframeRequests

# packets kept for consumers opening their gate (~1 s of 1 Mbit/s video)
RECENT = 128
# seconds between two REMBs telling the publisher its ceiling
REMB_INTERVAL = 1.0
# seconds between two reckonings of the playout floor a video publisher's subscribers are sent
PLAYOUT_REFRESH = 0.5

logger = logging.getLogger(__name__)


class PacketSubscriber(Protocol):
    """What a producer hands its packets to (a consumer; the producer knows nothing else of it)."""

    def on_packet(self, producer: Producer, packet: Packet, key: bool, now: float) -> None:
        """One packet, in arrival order; `key`: it starts a keyframe (always true for audio)."""

    def unbind(self, producer: Producer) -> None:
        """The producer is closing: stop expecting its packets."""


@dataclass(frozen=True, slots=True)
class SenderReport:
    """The publisher's latest RTCP sender report: its wallclock (NTP seconds) when its RTP clock read `rtp`."""

    ssrc: int
    ntp: float
    rtp: int
    clock_rate: int

    def wallclock(self, timestamp: int) -> float:
        """The publisher's wallclock (NTP seconds) at RTP `timestamp` (a capture time, for lip sync)."""
        diff = (timestamp - self.rtp) & 0xFFFFFFFF
        if diff >= 0x80000000:
            diff -= 0x100000000
        return self.ntp + diff / self.clock_rate


class Producer(AsyncIOEventEmitter):
    """Receives one section's packets (an `RtpStream`) and hands each to its consumers.

    No frames are assembled here: a subscriber that wants them (the recorder)
    does it from the packets, timed by `sender_report`.  Emits "close" once.
    """

    def __init__(self, id: str, kind: str, source: str, receiver: RTCRtpReceiver,
                 keyframe_request_interval: float, max_bitrate: int = 0,
                 rtt: Callable[[], float | None] = lambda: None, max_playout_floor: float = playout.MAX_FLOOR) -> None:
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
        self._recent: list[Packet | None] = [None] * RECENT
        # the latest sender report of the publisher (None before the first)
        self.sender_report: SenderReport | None = None
        self.keyframe_requests = 0
        self.nacks_sent = 0
        self.bytes = 0
        self._receiver = receiver
        self._time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self._consumers: list[PacketSubscriber] = []
        self._keyframe_requests = KeyframeRequests(keyframe_request_interval)
        self._keyframe_timer: asyncio.TimerHandle | None = None
        # bandwidth: the lowest of the cap and the subscribers' estimates
        self.max_bitrate = max_bitrate
        self.sent_estimate: int | None = None
        self._subscriber_estimates: dict[int, int] = {}
        self._remb_timer: asyncio.TimerHandle | None = None
        self.stream = RtpStream(kind, receiver, self._on_packet, self._on_nack, rtt=rtt, on_outage=self.request_keyframe)
        # the floor under the subscribers' video jitter buffers, as the playout-delay extension's bytes (sfu/playout.py),
        # worked out again every PLAYOUT_REFRESH seconds
        self.playout_delay = playout.NONE
        self.playout_floor = 0.0
        self._playout_due = 0.0
        self._max_playout_floor = max_playout_floor
        hooks.on_receive(receiver, self._start)
        hooks.watch_sender_reports(receiver, self._on_sender_report)

    def __repr__(self) -> str:
        return f"Producer({self.id}, {self.source})"

    @property
    def receiver(self) -> RTCRtpReceiver:
        return self._receiver

    @property
    def codec(self) -> str:
        """The media codec's name in lower case ("vp8", "opus"...); "" before negotiation."""
        # RED (sfu/red.py) only wraps Opus: the media codec is the Opus inside
        return next((c.name.lower() for c in self.stream.codecs.values() if c.name.lower() != "red"), "")

    def _start(self, parameters: object) -> None:
        self.stream.start(parameters)  # type: ignore[arg-type]
        if self.kind == "video" and not self.closed:
            self._remb_timer = asyncio.get_running_loop().call_later(0.1, self._send_remb)

    def codec_name(self, payload_type: int) -> str:
        """The lower-case name of the codec the publisher sends as `payload_type` ("" if unknown)."""
        return self.stream.codec_name(payload_type)

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

    def _on_packet(self, packet: Packet) -> None:
        # the hot path: every media packet of the section, RTX already unwrapped
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
            key = is_keyframe_start(self.stream.codec_name(packet.payload_type), packet.payload)
            if key:
                self.keyframes += 1
                self._keyframe_requests.keyframe_arrived(time.monotonic())
            if packet.marker:
                self.frames += 1
        else:
            key = True
            self.frames += 1
        now = time.time()
        if now >= self._playout_due and self.kind == "video":
            self._playout_due = now + PLAYOUT_REFRESH
            self.playout_floor = min(self._max_playout_floor, self.stream.playout.floor(time.monotonic()))
            self.playout_delay = playout.encode(self.playout_floor)
        for consumer in self._consumers:
            consumer.on_packet(self, packet, key, now)

    def received_after(self, packet: Packet) -> Iterator[Packet]:
        """The packets that follow `packet` and already came (they overtook it), in order."""
        seq = packet.sequence_number
        for _ in range(RECENT - 1):
            seq = (seq + 1) & 0xFFFF
            after = self._recent[seq % RECENT]
            if after is None or after.sequence_number != seq or after.ssrc != packet.ssrc:
                return
            yield after

    # ------------------------------------------------------------ the publisher's clock

    def _on_sender_report(self, ssrc: int, ntp: int, rtp: int) -> None:
        # RTCP SR (RFC 3550 6.4.1): the publisher's wallclock (NTP) when its RTP clock read `rtp`
        self.sender_report = SenderReport(ssrc, (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32, rtp,
                                          self._time_base.denominator)

    # ------------------------------------------------------------ feedback to the publisher

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
        self.stream.send_pli()

    def estimate(self, own: int | None = None) -> int | None:
        """The bitrate to ask of the publisher: the lowest of cap, `own` and the subscribers'."""
        known = [b for b in (own, self.max_bitrate or None, *self._subscriber_estimates.values()) if b]
        return min(known) if known else None

    def _send_remb(self) -> None:
        # the publisher's ceiling, repeated: a browser forgets a REMB after a while
        self._remb_timer = None
        if self.closed:
            return
        wanted = self.estimate()
        if wanted is not None and self.stream.send_remb(wanted):
            self.sent_estimate = wanted
        self._remb_timer = asyncio.get_running_loop().call_later(REMB_INTERVAL, self._send_remb)

    def on_subscriber_estimate(self, consumer: PacketSubscriber, bitrate: int) -> None:
        """A subscriber reported its bandwidth (REMB); pass a drop on at once."""
        self._subscriber_estimates[id(consumer)] = bitrate
        wanted = self.estimate()
        if wanted is not None and (self.sent_estimate is None or wanted < 0.9 * self.sent_estimate):
            if self.stream.send_remb(wanted):
                self.sent_estimate = wanted

    def close(self) -> None:
        """Detach from consumers; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self.stream.close()
        if self._remb_timer is not None:
            self._remb_timer.cancel()
            self._remb_timer = None
        if self._keyframe_timer is not None:
            self._keyframe_timer.cancel()
            self._keyframe_timer = None
        for consumer in list(self._consumers):
            consumer.unbind(self)
        self._consumers.clear()
        logger.debug("%r closed after %d frames", self, self.frames)
        self.emit("close")
