"""Consumer: one outgoing track to one subscriber, fed with RTP packets by a producer."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from . import red
from .bwe import OVERUSING
from .egress import CONGESTED_LOSS, LossCeiling, Outlet, RtpEgress
from .packet import Packet
from .repair import RetransmitGate, UnansweredNacks

if TYPE_CHECKING:
    from .producer import Producer

logger = logging.getLogger(__name__)

# how far back (in a leg's sequence numbers) a keyframe's or a collapse's mark decides what is not resent
STALE_SPAN = 0x4000


class Consumer(MediaStreamTrack):
    """Forwards one producer's packets to one subscriber leg, rewritten by an `RtpEgress`.

    It is also the track of the leg's `RTCRtpSender`, one that never yields a
    frame: the sender's own RTP loop stays idle and only its RTCP loop runs.
    The consumer outlives its producers: when the correspondent reloads or
    changes device, it is bound to the new producer, keeps sequence numbers
    and timestamps continuous and waits for a keyframe, so the subscriber
    never renegotiates.  Video sends nothing until a keyframe, then flows.
    """

    def __init__(self, kind: str, source: str) -> None:
        super().__init__()
        self.kind = kind
        self.source = source
        self._producer: Producer | None = None
        self._egress: RtpEgress | None = None
        self._open = False  # closed until a keyframe (video) or the first packet (audio)
        self._epoch = -1
        self._stopped: asyncio.Future[None] | None = None
        self.frames_sent = 0
        self.frames_dropped = 0
        self.keyframe_requests = 0
        self.nacks_received = 0
        self.estimate: int | None = None
        self.remb: int | None = None  # the subscriber's last REMB, whether it is the estimate or not
        self._outlet: Outlet | None = None
        self._retransmits = RetransmitGate()
        self._unanswered = UnansweredNacks()
        self._collapses = 0  # the leg's estimator's collapse count last seen
        self.collapse_keyframes = 0  # keyframes asked for because the leg collapsed
        self._loss = LossCeiling()
        # the leg's first sequence number a picture still needs: the last keyframe sent, or the packet after
        # the last one sent when the leg collapsed (its keyframe is on its way); nothing before it is resent
        self._needed_from: int | None = None
        self.stale_nacks = 0  # NACKs for packets before `_needed_from`, not answered
        self.feedback_repairs = 0  # packets resent because the leg's transport-wide feedback said lost
        # the subscriber leg's round-trip time (s), None until known; set by the participant
        self.rtt: Callable[[], float | None] = lambda: None

    def __repr__(self) -> str:
        return f"Consumer({self.source})"

    @property
    def producer(self) -> Producer | None:
        return self._producer

    @property
    def egress(self) -> RtpEgress | None:
        return self._egress

    def start(self, egress: RtpEgress, outlet: Outlet | None = None) -> None:
        """The subscriber leg is up: send through `egress` (on `outlet`, the leg's socket) from now on."""
        self._egress = egress
        self._outlet = outlet
        if outlet is not None:
            outlet.carries(egress)
            if outlet.bwe is not None and self.kind == "video":
                outlet.on_estimate(self.on_estimate)
                outlet.on_lost(egress, self.feedback_lost)
        self._open = False
        if self._producer is not None:  # what came before the leg was up is lost: start afresh
            self._producer.request_keyframe()

    def bind(self, producer: Producer) -> None:
        """Take packets from `producer` (replacing any previous one)."""
        if self._producer is producer:
            return
        if self._producer is not None:
            self._producer.remove_consumer(self)
        self._producer = producer
        self._open = False
        producer.add_consumer(self)
        producer.request_keyframe()

    def unbind(self, producer: Producer) -> None:
        if self._producer is producer:
            producer.remove_consumer(self)
            self._producer = None

    def on_remb(self, bitrate: int) -> None:
        """The subscriber's REMB, Chromium's receive-side estimate of its video: the leg's estimate unless
        the SFU estimates the leg itself from transport-wide feedback (a browser that negotiated it but
        sends REMB and no feedback is still followed)."""
        self.remb = bitrate
        if self.estimated_by == "remb":
            self.on_estimate(bitrate)

    def on_estimate(self, bitrate: int) -> None:
        """The leg's delay-based estimate: the subscriber's REMB (its video), or the SFU's own from
        transport-wide feedback (everything the leg carries).

        Only video publishers are asked for a bitrate: the estimate less what else the leg carries
        that the publisher does not send (the SFU's own retransmissions; the audio, when the estimate
        is the whole leg's), and never more than the leg's loss lets through.
        """
        self.estimate = bitrate
        if self.kind == "video":
            self._ask(self._budget())
            outlet = self._outlet
            if outlet is not None and outlet.bwe is not None and outlet.bwe.collapses != self._collapses:
                # the leg lost over a quarter of half a second: more than its retransmissions can repair
                # soon through a link that just narrowed; a keyframe at the new rate repairs it at once
                self._collapses = outlet.bwe.collapses
                if self._producer is not None and self._open:
                    self.collapse_keyframes += 1
                    self._producer.request_keyframe()
                    # what was sent until now was mostly lost with the step, and what of it arrived cannot be
                    # decoded without the rest: resending it would only take the narrowed link from the
                    # keyframe (issue 18: 120-150 NACKs per 100 ms after a 300 kbit/s step, a quarter of the
                    # leg taken off what the publisher is asked, and late frames shown from before the step)
                    last = self._egress.last_sequence_number if self._egress is not None else None
                    if last is not None:
                        self._needed_from = (last + 1) & 0xFFFF

    def on_receiver_report(self, highest: int, lost: int) -> None:
        """A receiver report block of the subscriber about this leg: a loss-based ceiling for video."""
        if self.kind != "video" or self._egress is None:
            return
        before = self._loss.ceiling
        egress = self._egress
        budget = self._budget()
        self._loss.report(highest, lost, egress.sent_between, egress.octets, time.monotonic(), budget)
        if self._loss.ceiling != before:
            self._ask(budget)

    @property
    def estimated_by(self) -> str:
        """Where the leg's estimate comes from: "transport-cc" (the SFU's, sfu/bwe.py) or "remb"."""
        outlet = self._outlet
        return "transport-cc" if outlet is not None and outlet.bwe is not None and outlet.bwe.feedbacks else "remb"

    @property
    def loss_ceiling(self) -> int | None:
        """The most the leg's loss lets the publisher be asked for (bit/s); None: loss does not limit it."""
        return self._loss.ceiling

    def _budget(self) -> int | None:
        if self.estimate is None:
            return None
        return self.estimate if self._outlet is None else self._outlet.video_budget(self.estimate, time.monotonic())

    def _ask(self, budget: int | None) -> None:
        # the publisher is asked for the lower of the delay-based estimate (REMB) and the loss-based ceiling
        if self._producer is None:
            return
        asks = [b for b in (budget, self._loss.ceiling) if b is not None]
        if asks:
            self._producer.on_subscriber_estimate(self, min(asks))

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (PLI/FIR): ask the publisher."""
        self.keyframe_requests += 1
        if self._producer is not None:
            self._producer.request_keyframe()

    @property
    def repair_keyframes(self) -> int:
        """Keyframes asked for because the subscriber's NACKs could not be answered."""
        return self._unanswered.keyframes

    def retransmit(self, sequence_number: int) -> None:
        """The subscriber lost a packet (NACK): send it again from our history, once per round trip;
        a keyframe when too many cannot be answered (gone from the history, or over the retransmission
        budget).  A packet the SFU never got is left to the publisher's leg, which repairs it: answering
        it spends nothing and asks for nothing.  Nor is a packet from before the last keyframe sent (a VP8
        keyframe resets every reference), or before a collapse of the leg (its keyframe is coming)."""
        self.nacks_received += 1
        egress = self._egress
        if egress is None:
            return
        if self._stale(sequence_number, egress):
            self.stale_nacks += 1
            return
        now = time.monotonic()
        if egress.kept(sequence_number):
            gate = self._retransmits
            starved = gate.over_budget
            if gate.allow(sequence_number, now, self.rtt()):
                egress.retransmit(sequence_number)
                return
            if gate.over_budget == starved:
                return  # resent less than a round trip ago: still on its way
        elif not egress.gone(sequence_number):
            return  # never came: lost before the SFU, and NACKed there already
        if self._unanswered.unanswered(now) and self._producer is not None:
            self._producer.request_keyframe()

    def feedback_lost(self, sequence_number: int, age: float) -> None:
        """The subscriber's transport-wide feedback reports lost a copy of packet `sequence_number` sent
        `age` seconds ago: send it again now, without waiting for the subscriber's NACK, unless a later
        copy is on its way (`RetransmitGate.lost`).

        This is where an SFU can do better than a direct call (issue 18).  A browser NACKs a gap as soon as
        it sees it, then again a round trip later; when the NACK or the retransmission is lost (at 5 % loss
        each way, one round in ten), the repair waits that round trip, ~165 ms on a 150 ms path, plus the
        NACK's way back.  The feedback, every 50-100 ms, tells the SFU of a lost NACK's packet 100+ ms
        sooner and of a lost retransmission ~50 ms sooner.  Not while the leg is congested (its loss over
        `CONGESTED_LOSS`, or its delay growing): there losses are the queue's, and resending at once,
        without the round trip a NACK waits, would only feed it."""
        egress, outlet = self._egress, self._outlet
        if egress is None or outlet is None or outlet.bwe is None:
            return
        if self._loss.loss > CONGESTED_LOSS or outlet.bwe.state == OVERUSING:
            return
        if self._stale(sequence_number, egress) or not egress.kept(sequence_number):
            return
        now = time.monotonic()
        if self._retransmits.lost(sequence_number, now - age, now):
            self.feedback_repairs += 1
            egress.retransmit(sequence_number)

    def on_packet(self, producer: Producer, packet: Packet, key: bool, now: float) -> None:
        """One packet from `producer`; `key`: it starts a keyframe (always true for audio)."""
        egress = self._egress
        if egress is None:
            return
        if not self._open or self._epoch != producer.epoch:
            if not key:
                if packet.marker:
                    self.frames_dropped += 1
                producer.request_keyframe()
                return
            self._open = True
            self._epoch = producer.epoch
            egress.rebase(packet, now)
            # packets of this keyframe that overtook its first one were dropped by the gate
            for sent in (packet, *producer.received_after(packet)):
                self._send(egress, sent, now, producer)
            if self.kind == "video":
                self._needed_from = egress.first_sequence_number
            return
        self._send(egress, packet, now, producer)
        if key and self.kind == "video" and egress.last_sequence_number is not None:
            self._needed_from = egress.last_sequence_number

    def _stale(self, sequence_number: int, egress: RtpEgress) -> bool:
        # sent before the mark; a mark over STALE_SPAN packets old says nothing (16-bit numbers wrap, and
        # what came before it left the history long ago)
        needed, last = self._needed_from, egress.last_sequence_number
        if needed is None or last is None or (last + 1 - needed) & 0xFFFF > STALE_SPAN:
            return False
        return 0 < (needed - sequence_number) & 0xFFFF <= STALE_SPAN

    def _send(self, egress: RtpEgress, packet: Packet, now: float, producer: Producer) -> None:
        payload_type = None
        if self.kind == "audio":  # RED or Opus, as each leg negotiated
            adapted = red.adapt(producer.codec_name(packet.payload_type), packet, egress.payload_types)
            if adapted is None:
                return
            packet, payload_type = adapted
        else:
            egress.playout_delay = producer.playout_delay
        egress.send(packet, now, payload_type)
        self._retransmits.original_sent()
        if packet.marker or self.kind == "audio":
            self.frames_sent += 1

    async def recv(self) -> Any:
        # the sender's RTP loop waits here until the consumer stops: packets go by `egress`
        if self.readyState == "live":
            if self._stopped is None:
                self._stopped = asyncio.get_running_loop().create_future()
            await self._stopped
        raise MediaStreamError

    def stop(self) -> None:
        """End the track (the sender stops); safe to call twice."""
        if self._producer is not None:
            self.unbind(self._producer)
        super().stop()
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)
