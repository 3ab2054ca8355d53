"""Participant: one browser tab in a room (the recorder subscribes to a room's producers directly)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.sdp import SessionDescription
from pyee.asyncio import AsyncIOEventEmitter

from . import aiortc_hooks as hooks
from . import playout, red, twcc
from .consumer import Consumer
from .egress import LegParameters, Outlet, RtpEgress
from .errors import ClosedError, MediaError
from .ingress import Ingress
from .options import SfuOptions, remb_cap
from .producer import Producer
from .roundtrip import RoundTrip

if TYPE_CHECKING:
    from aiortc.rtcrtpparameters import RTCRtpCodecCapability


logger = logging.getLogger(__name__)

# the media sections of an offer, in order: (source, kind)
SOURCES: tuple[tuple[str, str], ...] = (("mic", "audio"), ("camera", "video"), ("screen", "video"))


class Participant(AsyncIOEventEmitter):
    """Owns one peer connection at a time, its producers (up) and consumers (down).

    Each media section carries the participant's own track up and the
    correspondent's down, so there is never any renegotiation.  A new offer
    (reload, network change) replaces the peer connection.  Emits
    "media-state" (connected / failed / timeout) and "close" once; a leg
    that aiortc fails or closes on its own is dropped and reported "failed"
    (the browser answers with a new offer).
    """

    def __init__(self, id: str, role: str, options: SfuOptions) -> None:
        super().__init__()
        self.id = id
        self.role = role
        self.closed = False
        self.media_state = "new"
        self.producers: dict[str, Producer] = {}
        self.consumers: dict[str, Consumer] = {}
        self.senders: dict[str, RTCRtpSender] = {}
        self._options = options
        self._pc: RTCPeerConnection | None = None
        self._outlets: dict[Any, Outlet] = {}  # DTLS transport -> its sending side
        self._ingresses: list[Ingress] = []  # and its receiving side
        self.round_trip = RoundTrip()  # fed by every sender's reports: one leg, one round trip
        self._timeout: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"Participant({self.id}, {self.role})"

    @property
    def pc(self) -> RTCPeerConnection | None:
        return self._pc

    def transport_cc(self) -> dict[str, Any] | None:
        """Transport-wide congestion control on this browser's connection (None: not negotiated)."""
        outlet = next((o for o in self._outlets.values() if o.bwe is not None), None)
        if outlet is None or outlet.bwe is None:
            return None
        bwe = outlet.bwe
        return {
            "feedback_sent": sum(i.arrivals.feedbacks for i in self._ingresses if i.arrivals is not None),
            "feedback_received": bwe.feedbacks,
            "feedback_malformed": outlet.malformed_feedback,
            "downlink_estimate": bwe.estimate,
            "downlink_state": bwe.state,
            "packets_reported": bwe.received,
            "packets_lost": bwe.lost,
            "collapses": bwe.collapses,  # cuts for a link losing over a quarter of what it was sent
        }

    def rtt(self) -> float | None:
        """The round-trip time to this browser (s), from its receiver reports; None until known."""
        return self.round_trip.value

    async def handle_offer(self, sdp: str) -> str:
        """Answer a browser's offer with a new peer connection; returns the answer SDP."""
        if self.closed:
            raise ClosedError(f"{self!r} is closed")
        kinds = _media_kinds(sdp)
        if kinds != [kind for _, kind in SOURCES]:
            want = ", ".join(f"{kind} ({source})" for source, kind in SOURCES)
            raise MediaError(f"the offer must carry {want} sections in this order, got {kinds}")
        self._drop_media()
        # max-bundle: one transport for every section.  With aiortc's default
        # ("balanced") a second video transceiver made before the offer keeps a
        # transport of its own that never connects (the screen share got nothing).
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self._pc = pc
        # owned from the start (self.producers...), so that a failure or a newer
        # offer drops them with the pc
        for source, kind in SOURCES:
            transceiver = pc.addTransceiver(kind, direction="sendrecv")
            codecs = self._codecs(kind)
            transceiver.setCodecPreferences(codecs)
            consumer = Consumer(kind, source)
            consumer.rtt = self.rtt
            transceiver.sender.replaceTrack(consumer)
            _forward_packets(transceiver.sender, consumer, self._outlets, self.round_trip)
            self.senders[source] = transceiver.sender
            self.producers[source] = Producer(
                f"{self.id}:{source}:{uuid.uuid4().hex[:6]}", kind, source,
                transceiver.receiver, self._options.keyframe_request_interval,
                max_bitrate=remb_cap(self._options.max_video_bitrate) if kind == "video" else 0,
                rtt=self.rtt, max_playout_floor=self._options.max_playout_floor,
            )
            self.consumers[source] = consumer
        pc.on("connectionstatechange", lambda: self._on_connection_state(pc))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
            for t in pc.getTransceivers():
                if not hooks.negotiated_codecs(t):
                    raise MediaError(f"no common {t.kind} codec (we offer {[c.mimeType for c in self._codecs(t.kind)]})")
            for t, media in zip(pc.getTransceivers(), SessionDescription.parse(sdp).media):
                _ask_opus_repair(hooks.negotiated_codecs(t), media.rtp.codecs, self._options)
            await pc.setLocalDescription(await pc.createAnswer())
        except MediaError:
            self._drop_media()
            raise
        except Exception as exc:  # aiortc raises ValueError, InvalidStateError... on a bad SDP
            self._drop_media()
            raise MediaError(f"the offer could not be answered: {exc}") from None
        if self.closed or self._pc is not pc:  # closed or replaced while we awaited: already dropped
            raise ClosedError(f"{self!r} was closed during negotiation")
        # from the DTLS handshake on, SRTP is ours: read in the socket callback, written to the socket
        assert pc.localDescription is not None
        answer = pc.localDescription.sdp
        # transport-wide congestion control, when asked and offered: aiortc knows nothing of it, the
        # answer says it and our own fast path numbers, records and reports (sfu/twcc.py, sfu/bwe.py)
        extension = None
        if self._options.congestion_control == "transport-cc":
            answer, extension = twcc.add_transport_cc(answer, sdp)
        # a floor under the browser's video jitter buffer while the other side's uplink needs repairs
        playout_delay = None
        if self._options.max_playout_floor > 0:
            answer, playout_delay = playout.add_playout_delay(answer, sdp)
        for dtls in {t.receiver.transport for t in pc.getTransceivers()}:
            outlet = self._outlets[dtls] = Outlet(dtls)
            outlet.rtt = self.rtt
            outlet.playout_delay = playout_delay
            ingress = Ingress(dtls)
            self._ingresses.append(ingress)
            if extension is not None:
                outlet.use_transport_cc(extension)
                ingress.send_transport_feedback(extension, outlet)
                ingress.on_rtcp = outlet.rtcp_received
            for t in pc.getTransceivers():
                if t.receiver.transport is dtls:
                    producer = next(p for p in self.producers.values() if p.receiver is t.receiver)
                    producer.stream.outlet = outlet
                    ingress.add(producer.stream)
        self._timeout = asyncio.get_running_loop().call_later(
            self._options.connect_timeout, self._on_connect_timeout, pc
        )
        # the room wires the new connection to everyone else's media
        self.emit("media", self)
        return answer

    def _codecs(self, kind: str) -> list[RTCRtpCodecCapability]:
        wanted = [c.lower() for c in (self._options.audio_codecs if kind == "audio" else self._options.video_codecs)]
        caps = RTCRtpSender.getCapabilities(kind).codecs
        chosen = [c for name in wanted for c in caps if c.mimeType.split("/")[1].lower() == name]
        if kind == "video":
            chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
        return chosen

    def _on_connection_state(self, pc: RTCPeerConnection) -> None:
        if pc is not self._pc:
            return
        state = pc.connectionState
        logger.info("%r media %s", self, state)
        if state == "connected":
            self._cancel_timeout()
            self._set_media_state("connected")
        elif state in ("failed", "closed"):
            # "closed" here is aiortc's doing (DTLS shut down, by the peer or on an
            # error), never ours: _drop_media forgets the pc before closing it
            self._drop_media()
            self._set_media_state("failed")

    def _on_connect_timeout(self, pc: RTCPeerConnection) -> None:
        if pc is self._pc and pc.connectionState != "connected":
            logger.info("%r media did not connect in %.0f s", self, self._options.connect_timeout)
            self._drop_media()
            self._set_media_state("timeout")

    def _set_media_state(self, state: str) -> None:
        self.media_state = state
        self.emit("media-state", state)

    def _cancel_timeout(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None

    def _drop_media(self) -> None:
        # close the current peer connection with its producers and consumers
        self._cancel_timeout()
        for producer in self.producers.values():
            producer.close()
        for consumer in self.consumers.values():
            consumer.stop()
        self.producers, self.consumers, self.senders = {}, {}, {}
        self._outlets = {}
        for ingress in self._ingresses:
            ingress.close()
        self._ingresses = []
        pc, self._pc = self._pc, None
        if pc is not None:
            task = asyncio.ensure_future(pc.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def close(self) -> None:
        """Leave the room and drop all media; safe to call twice."""
        if self.closed:
            return
        self.closed = True
        self._drop_media()
        self.emit("close")

    @property
    def closing(self) -> bool:
        """Peer connections of this participant are still being closed."""
        return bool(self._closing)

    async def wait_closed(self) -> None:
        """Wait until the peer connections being closed are closed."""
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


def _media_kinds(sdp: str) -> list[str]:
    try:
        return [m.kind for m in SessionDescription.parse(sdp).media]
    except Exception as exc:  # aiortc's parser raises assorted errors on garbage
        raise MediaError(f"the offer is not valid SDP: {exc}") from None


def _ask_opus_repair(codecs: list[Any], offered: list[Any], options: SfuOptions) -> None:
    # what our answer says about Opus is what the browser's encoder does for this leg:
    # in-band FEC (a lost packet is rebuilt from the next one) and DTX (silence costs
    # nearly nothing); aiortc answers Opus without any parameter.  RED, when the
    # browser offered it, comes first (Chromium sends it only then) and carries Opus.
    opus = next((c for c in codecs if c.mimeType.lower() == "audio/opus"), None)
    if opus is None:
        return
    opus.parameters.update({"minptime": 10, "useinbandfec": int(options.opus_fec), "usedtx": int(options.opus_dtx)})
    if options.opus_red:
        red.answer_first(codecs, offered)


def _forward_packets(sender: RTCRtpSender, consumer: Consumer, outlets: dict[Any, Outlet],
                     round_trip: RoundTrip) -> None:
    # once the leg is negotiated and connected, the consumer sends rewritten packets
    # itself; the sender's RTP loop idles on the consumer (a track that never yields),
    # its RTCP loop reports the consumer's counts, and the subscriber's feedback
    # (PLI/FIR, NACK, REMB) goes to the consumer
    def start(parameters: RTCRtpSendParameters) -> None:
        outlet = outlets.get(sender.transport) or outlets.setdefault(sender.transport, Outlet(sender.transport))
        leg = LegParameters(sender, parameters, outlet.transport_cc, outlet.playout_delay)
        consumer.start(RtpEgress(consumer.kind, leg, outlet.send_rtp, outlet.send_log), outlet)

    def counts() -> tuple[int, int, int, int]:
        if consumer.egress is None:
            return 0, 0, 0, 0
        sr = consumer.egress.counts()
        round_trip.sender_report(sr[0], time.monotonic())
        return sr

    def timing(lsr: int, dlsr: int) -> None:
        round_trip.receiver_report(lsr, dlsr, time.monotonic())

    hooks.on_send(sender, start)
    hooks.report_counts(sender, counts)
    hooks.on_keyframe_request(sender, consumer.request_keyframe)
    hooks.on_nack(sender, consumer.retransmit)
    hooks.watch_remb(sender, consumer.on_remb)
    hooks.watch_receiver_reports(sender, consumer.on_receiver_report, timing)
