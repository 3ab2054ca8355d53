"""Ingress: a publisher's SRTP handled as bytes, in the UDP socket's callback.

aiortc keeps ICE, the DTLS handshake and RTCP parsing.  Once DTLS has keyed
SRTP, every RTP datagram of a participant's (bundled) transport is
unprotected here, its header read with `struct`, demultiplexed by SSRC to
the `RtpStream` of its section, and handed to the producer as a `Packet`,
before the callback returns: no `RtpPacket`, no queue, no task.

An `RtpStream` does what aiortc's receiver did per packet and an SFU needs:
RTX unwrapping, reception statistics (aiortc's RTCP loop still sends the
receiver reports from them) and NACKs for the gaps, asked again until
repaired.  It sends PLI and REMB on request.  aiortc's per-packet bandwidth
estimator is not run: the publisher is told the lowest of the configured cap
and what the subscribers' own estimators report (relayed REMB), which is
what a 1:1 forwarder can honour anyway.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpCodecParameters, RTCRtpReceiveParameters
from aiortc.rtcrtpreceiver import RTCRtpReceiver
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_PLI,
    RTCP_RTPFB,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    pack_remb_fci,
)

from . import aiortc_hooks as hooks
from .arrival import wall_clock
from .egress import Outlet
from .ice import GuardedProtocol
from .packet import Packet
from .playout import PlayoutFloor
from .repair import NackSchedule, nack_items
from .twcc import FeedbackRecorder

logger = logging.getLogger(__name__)

_HEAD = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
# how far back a lost packet is still asked for (aiortc's RTP_HISTORY_SIZE)
NACK_WINDOW = 128
# each NACK towards a publisher is sent again this much later, for the packets still missing then: on a
# leg losing 5 % each way a repair round fails about one time in ten, half of those for the lost NACK
NACK_REPEAT = 0.015
# seconds between two transport-wide feedbacks to a publisher (libwebrtc's receivers: 50-250 ms, aiming
# at 5 % of the bitrate: 50 ms at the rates of a consultation's camera; each is ~40 bytes there)
FEEDBACK_INTERVAL = 0.05


class RtpStream:
    """One media section of a publisher: its SSRCs' packets become `Packet`s for `on_packet`."""

    def __init__(self, kind: str, receiver: RTCRtpReceiver, on_packet: Callable[[Packet], None],
                 on_nack: Callable[[int], None] = lambda n: None,
                 rtt: Callable[[], float | None] = lambda: None, on_outage: Callable[[], object] = lambda: None,
                 nack_schedule: NackSchedule | None = None) -> None:
        self.kind = kind
        self.receiver = receiver
        hooks.drop_receive_estimator(receiver)  # packets come here, never to aiortc's receive path
        self._on_packet = on_packet
        self._on_nack = on_nack
        self.outlet: Outlet | None = None
        self.codecs: dict[int, RTCRtpCodecParameters] = {}
        self._codec_names: dict[int, str] = {}  # lower-case, read once per video packet
        self._rtx_apt: dict[int, int] = {}
        self.rtx_ssrcs: dict[int, int] = {}
        self._level_id = 0
        # transport-wide congestion control: the extension's id and the transport's arrivals
        self._tcc_id = 0
        self._arrivals: FeedbackRecorder | None = None
        self._clock: Callable[[], float] = wall_clock
        self._rtcp_ssrc: int | None = None
        self.media_ssrc: int | None = None
        self._stats: dict[int, hooks.ReceptionStatistics] = {}
        # NACK generation (video): the highest sequence number and the gaps below it
        self._nack = kind == "video"
        self._max_seq: int | None = None
        self.missing: set[int] = set()
        self.unrepaired = 0  # packets that left the NACK window without arriving
        # packets repaired after 1, 2, 3, 4+ NACKs, and the time from the first NACK (s) of the slowest
        self.repaired_after = [0, 0, 0, 0]
        self.slowest_repair = 0.0
        # what the repairs take: the floor under the subscribers' jitter buffers (sfu/playout.py)
        self.playout = PlayoutFloor()
        self._schedule = nack_schedule or NackSchedule()
        self._rtt = rtt
        self._on_outage = on_outage
        self._timer: asyncio.TimerHandle | None = None
        self._repeat: list[int] = []  # NACKed, to be NACKed again at `_repeat_timer` if still missing
        self._repeat_timer: asyncio.TimerHandle | None = None
        self.started = False

    def start(self, parameters: RTCRtpReceiveParameters) -> None:
        """The section is negotiated and DTLS is up (aiortc's receiver has started)."""
        for codec in parameters.codecs:
            assert codec.payloadType is not None
            if codec.name.lower() == "rtx":
                apt = codec.parameters.get("apt")
                if isinstance(apt, int):
                    self._rtx_apt[codec.payloadType] = apt
            else:
                self.codecs[codec.payloadType] = codec
                self._codec_names[codec.payloadType] = codec.name.lower()
        for ext in parameters.headerExtensions:
            if ext.uri == AUDIO_LEVEL_URI:
                self._level_id = ext.id
        self.rtx_ssrcs = hooks.rtx_ssrcs(self.receiver)
        self._rtcp_ssrc = hooks.rtcp_ssrc(self.receiver)
        hooks.stop_decoder_thread(self.receiver)  # it would wait for frames that never come
        self.started = True

    def record_arrivals(self, extension_id: int, arrivals: FeedbackRecorder,
                        clock: Callable[[], float] = wall_clock) -> None:
        """Record the transport-wide sequence number (extension `extension_id`) of every packet in `arrivals`,
        with its arrival time from `clock` (asked while the packet is handled)."""
        self._tcc_id = extension_id
        self._arrivals = arrivals
        self._clock = clock

    @property
    def rtcp_ssrcs(self) -> tuple[int, int] | None:
        """(our RTCP SSRC, the publisher's media SSRC) once media came, for feedback about it."""
        if self._rtcp_ssrc is None or self.media_ssrc is None:
            return None
        return self._rtcp_ssrc, self.media_ssrc

    def codec_name(self, payload_type: int) -> str:
        return self._codec_names.get(payload_type, "")

    def is_rtx_payload_type(self, payload_type: int) -> bool:
        return payload_type in self._rtx_apt

    def receive(self, data: bytes, rtx: bool) -> None:
        """One unprotected RTP packet of this section (the hot path)."""
        b0, b1, seq, ts = _HEAD.unpack_from(data)
        end = len(data)
        at = 12 + 4 * (b0 & 0x0F)
        level = None
        if b0 & 0x10:  # header extensions: skipped, audio-level and transport-wide number read
            if at + 4 > end:
                return
            start = at + 4
            at = start + 4 * _U16.unpack_from(data, at + 2)[0]
            if self._level_id or self._tcc_id:
                level, tseq = _extensions(data, start, min(at, end), self._level_id, self._tcc_id)
                if tseq >= 0 and self._arrivals is not None:
                    # before any other check: padding-only probes are what the publisher's probing measures
                    self._arrivals.record(tseq, self._clock())
        padding = 0
        if b0 & 0x20:
            padding = data[-1]
            end -= padding
        if end < at:
            return
        pt = b1 & 0x7F
        if rtx:
            apt = self._rtx_apt.get(pt)
            if apt is None or end - at < 2:
                return  # padding-only probes, or not ours
            ssrc = self.rtx_ssrcs.get(_U32.unpack_from(data, 8)[0]) or self.media_ssrc
            if ssrc is None:
                return
            seq = _U16.unpack_from(data, at)[0]
            at += 2
            pt = apt
            stats = self._stats.get(ssrc)
            if stats is not None:  # a repaired packet is not lost (receiver reports)
                stats.count(seq, ts)
        else:
            if pt not in self.codecs:
                return
            ssrc = _U32.unpack_from(data, 8)[0]
            stats = self._stats.get(ssrc)
            if stats is None:
                stats = self._stats[ssrc] = hooks.stream_statistics_for(self.receiver, ssrc, self.codecs[pt].clockRate)
                self.media_ssrc = ssrc
                self._max_seq = None
                self.missing.clear()
            stats.count(seq, ts)
        if self._nack and ssrc == self.media_ssrc:
            self._track(seq)
        self._on_packet(Packet(ssrc, pt, seq, ts, b1 >> 7, data[at:end], padding, level))

    # ------------------------------------------------------------ NACK towards the publisher

    def _track(self, seq: int) -> None:
        top = self._max_seq
        if top is None:
            self._max_seq = seq
            return
        ahead = (seq - top) & 0xFFFF
        if ahead == 0:
            return
        if ahead >= 0x8000:  # an older packet: a retransmission, or reordering
            if seq in self.missing:
                self.missing.discard(seq)
                self._repaired(seq)
            return
        self._max_seq = seq
        if ahead == 1:
            return
        missing = self.missing
        for n in range(max(1, ahead - NACK_WINDOW), ahead):
            missing.add((top + n) & 0xFFFF)
        floor = (seq - NACK_WINDOW) & 0xFFFF
        for s in [s for s in missing if ((s - floor) & 0xFFFF) >= 0x8000]:
            missing.discard(s)
            self.unrepaired += 1
        self._send_nacks()

    def _repaired(self, seq: int) -> None:
        now = asyncio.get_running_loop().time()
        answered = self._schedule.answered(seq, now)
        if answered is not None:
            tries, took = answered
            self.repaired_after[min(tries, 4) - 1] += 1
            self.slowest_repair = max(self.slowest_repair, took)
            self.playout.repaired(took, now)

    def _send_nacks(self) -> None:
        # aiortc NACKs a gap only once; here `NackSchedule` asks again about once a round
        # trip while a packet is still missing, and calls a long gap an outage (keyframe)
        if self._rtcp_ssrc is None or self.media_ssrc is None or self.outlet is None:
            return
        loop = asyncio.get_running_loop()
        rtt = self._rtt()
        bursts = self._schedule.bursts
        lost = self._schedule.due(self.missing, loop.time(), rtt)
        if self._schedule.bursts != bursts:
            self._on_outage()
        if lost:
            self._on_nack(len(lost))
            self._send_nack(lost)
            self._repeat += lost
            if self._repeat_timer is None:
                self._repeat_timer = loop.call_later(NACK_REPEAT, self._nack_again)
        at = self._schedule.next_time(rtt)
        if at is None:
            return
        if self._timer is not None:
            if self._timer.when() <= at:
                return
            self._timer.cancel()
        self._timer = loop.call_at(at, self._again)

    def _again(self) -> None:
        self._timer = None
        self._send_nacks()

    def _send_nack(self, lost: list[int]) -> None:
        if self._rtcp_ssrc is None or self.media_ssrc is None or self.outlet is None:
            return
        items = nack_items(lost)
        # RTPFB (205), FMT 1: the length counts 32-bit words after the first, less one
        header = struct.pack("!BBHLL", 0x80 | RTCP_RTPFB_NACK, RTCP_RTPFB, (8 + len(items)) // 4,
                             self._rtcp_ssrc, self.media_ssrc)
        self.outlet.send_rtcp(header + items)

    def _nack_again(self) -> None:
        # the copy: a publisher that got the first NACK has the packet in its pacer or just resent it,
        # and libwebrtc resends a packet at most once a round trip, so the copy costs its uplink nothing
        self._repeat_timer = None
        lost = [seq for seq in dict.fromkeys(self._repeat) if seq in self.missing]
        self._repeat.clear()
        if lost:
            self._send_nack(lost)

    # ------------------------------------------------------------ other feedback

    def send_pli(self) -> bool:
        """Ask the publisher for a keyframe; False if nothing was received yet."""
        if self._rtcp_ssrc is None or self.media_ssrc is None or self.outlet is None:
            return False
        self.outlet.send_rtcp(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=self._rtcp_ssrc,
                                                   media_ssrc=self.media_ssrc)))
        return True

    def send_remb(self, bitrate: int) -> bool:
        """Tell the publisher the most it should send (REMB); False if nothing was received yet."""
        if self._rtcp_ssrc is None or self.media_ssrc is None or self.outlet is None:
            return False
        self.outlet.send_rtcp(bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=self._rtcp_ssrc, media_ssrc=0,
                                                   fci=pack_remb_fci(bitrate, [self.media_ssrc]))))
        return True

    def close(self) -> None:
        for timer in (self._timer, self._repeat_timer):
            if timer is not None:
                timer.cancel()
        self._timer = self._repeat_timer = None


def _extensions(data: bytes, i: int, end: int, level_id: int, tcc_id: int) -> tuple[tuple[bool, int] | None, int]:
    # one pass over RFC 8285 one-byte elements (0xBEDE profile; two-byte ones carry neither here):
    # (audio level or None, transport-wide number or -1); an id of 0 is not asked for
    level, tseq = None, -1
    if _U16.unpack_from(data, i - 4)[0] != 0xBEDE:
        return level, tseq
    while i < end:
        b = data[i]
        if b == 0:  # padding
            i += 1
            continue
        ident, size = b >> 4, (b & 0x0F) + 1
        if ident == 15:
            break
        if ident == tcc_id and tcc_id and size == 2 and i + 2 < end:
            tseq = (data[i + 1] << 8) | data[i + 2]
        elif ident == level_id and level_id and i + 1 < end:
            v = data[i + 1]
            level = (bool(v & 0x80), v & 0x7F)
        i += 1 + size
    return level, tseq


class Ingress:
    """One DTLS transport's incoming datagrams: SRTP by us, anything else by aioice/aiortc."""

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._rx: pylibsrtp.Session | None = None
        self._unprotect: Callable[[bytes], bytes] = lambda data: data  # set with _rx
        self._by_ssrc: dict[int, tuple[RtpStream, bool]] = {}
        self._by_receiver: dict[RTCRtpReceiver, RtpStream] = {}
        self._pending: set[asyncio.Task[Any]] = set()
        # sees every plain RTCP compound packet first (transport-wide feedback about what the SFU sends)
        self.on_rtcp: Callable[[bytes], None] | None = None
        # transport-wide feedback to the publisher: what arrived, sent by `outlet` every FEEDBACK_INTERVAL
        self.arrivals: FeedbackRecorder | None = None
        self._tcc_id = 0
        self.outlet: Outlet | None = None
        self._feedback_timer: asyncio.TimerHandle | None = None
        self.closed = False
        # the arrival time of the datagram being handled, from the socket it came through
        self._arrival: Callable[[], float] = wall_clock
        for protocol in hooks.ice_protocols(dtls):
            if isinstance(protocol, GuardedProtocol):  # the UDP guard admits first, then we take SRTP
                protocol.media = self._media_of(protocol)
            else:
                hooks.intercept_datagrams(protocol, self.datagram_received)

    def _media_of(self, protocol: GuardedProtocol) -> Callable[[bytes], bool]:
        handle = self.handle

        def media(data: bytes) -> bool:
            self._arrival = protocol.arrival
            return handle(data)

        return media

    def arrival_time(self) -> float:
        """When the datagram being handled reached this host (s, wall clock: sfu/arrival.py)."""
        return self._arrival()

    def add(self, stream: RtpStream) -> None:
        self._by_receiver[stream.receiver] = stream
        if self.arrivals is not None:
            stream.record_arrivals(self._tcc_id, self.arrivals, self.arrival_time)

    def send_transport_feedback(self, extension_id: int, outlet: Outlet) -> None:
        """The publisher numbers its packets with extension `extension_id`: tell it when each arrived,
        through `outlet`, every FEEDBACK_INTERVAL while packets come."""
        self._tcc_id = extension_id
        self.arrivals = FeedbackRecorder()
        self.outlet = outlet
        for stream in self._by_receiver.values():
            stream.record_arrivals(extension_id, self.arrivals, self.arrival_time)
        self._feedback_timer = asyncio.get_running_loop().call_later(FEEDBACK_INTERVAL, self._feedback)

    def _feedback(self) -> None:
        self._feedback_timer = None
        if self.closed:
            return
        arrivals, outlet = self.arrivals, self.outlet
        if arrivals is not None and outlet is not None and arrivals.pending:
            ssrcs = next((s for stream in self._by_receiver.values() if (s := stream.rtcp_ssrcs)), None)
            if ssrcs is not None:
                for packet in arrivals.build(*ssrcs):
                    outlet.send_rtcp(packet)
        self._feedback_timer = asyncio.get_running_loop().call_later(FEEDBACK_INTERVAL, self._feedback)

    def close(self) -> None:
        """Stop the feedback timer; safe to call twice."""
        self.closed = True
        if self._feedback_timer is not None:
            self._feedback_timer.cancel()
            self._feedback_timer = None

    def datagram_received(self, data: bytes, addr: tuple[Any, ...], aioice: hooks.Datagram) -> None:
        """A datagram of a socket without a UDP guard: ours if SRTP, else aioice's."""
        self._arrival = wall_clock
        if not self.handle(data):
            aioice(data, addr)

    def handle(self, data: bytes) -> bool:
        """Take an SRTP/SRTCP datagram (the hot path); False: not one, or no keys yet (aiortc's then)."""
        # RFC 7983: 128-191 is RTP/RTCP; STUN (0-3) and DTLS (20-63) stay with aioice and aiortc
        if not data or not 127 < data[0] < 192:
            return False
        rx = self._rx
        if rx is None:
            rx = self._rx = hooks.srtp_sessions(self._dtls)[0]
            if rx is None:  # before the handshake's keys: aiortc drops it
                return False
            self._unprotect = hooks.rtp_unprotector(rx)
        try:
            if len(data) > 1 and 191 < data[1] < 224:  # RTCP (RFC 5761)
                plain = rx.unprotect_rtcp(data)
                if self.on_rtcp is not None:
                    self.on_rtcp(plain)
                hooks.handle_rtcp(self._dtls, plain, self._pending)
                return True
            plain = self._unprotect(data)
        except (pylibsrtp.Error, ValueError):  # ValueError: longer than pylibsrtp's buffer
            return True  # replayed, forged or too long: what aiortc drops too
        if len(plain) < 12:
            return True
        entry = self._by_ssrc.get(_U32.unpack_from(plain, 8)[0])
        try:
            if entry is None:
                entry = self._learn(plain)
                if entry is None:
                    return True
            entry[0].receive(plain, entry[1])
        except Exception:  # never let one packet break the socket's protocol
            logger.exception("RTP handling failed")
        return True

    def _learn(self, plain: bytes) -> tuple[RtpStream, bool] | None:
        # a new SSRC: aiortc's router knows its section (signalled SSRC, mid or payload type)
        ssrc = _U32.unpack_from(plain, 8)[0]
        for stream in self._by_receiver.values():  # a signalled RTX SSRC (ssrc-group FID)
            if stream.started and ssrc in stream.rtx_ssrcs:
                self._by_ssrc[ssrc] = (stream, True)
                return stream, True
        receiver, payload_type = hooks.route_rtp(self._dtls, plain)
        found = self._by_receiver.get(receiver) if receiver is not None else None
        if found is None or not found.started:
            return None
        stream = found
        entry = (stream, stream.is_rtx_payload_type(payload_type))
        if entry[1]:
            hooks.map_ssrc(self._dtls, ssrc, stream.receiver)  # two video sections share the RTX type
        self._by_ssrc[ssrc] = entry
        return entry
