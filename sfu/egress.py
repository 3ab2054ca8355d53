"""Egress: one producer's packets rewritten for one subscriber leg, protected and sent.

Like mediasoup's `SeqManager` plus its `RtpStreamSend`: `RtpEgress` maps the
producer's sequence numbers and timestamps onto one continuous stream per
subscriber (across publisher reloads and gate reopenings), writes the leg's
header (SSRC, payload type, `mid`, `abs-send-time`, `audio-level`) in front
of the payload bytes and keeps a history for NACKs (RTX when negotiated).
`Outlet` SRTP-protects with the leg's keys and writes to the ICE socket,
in the caller's stack: no task, no queue.
"""

from __future__ import annotations

import array
import asyncio
import dataclasses
import mmap
import random
import struct
import time
import weakref
from collections.abc import Callable
from typing import Any

import pylibsrtp
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpSendParameters
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import HeaderExtensionsMap, RtpPacket

from . import aiortc_hooks as hooks
from . import playout, twcc
from .bwe import APP_LIMITED, NO_STREAM, SendLog, SendSideEstimator
from .packet import Packet

# seconds between 1900 (NTP) and 1970 (Unix)
NTP_OFFSET = 2208988800
# packets kept per consumer to answer NACKs: ~5 s of 1 Mbit/s video; audio is not NACKed by
# browsers (Opus has no `nack` feedback in their offers), so 1.3 s of it is plenty and keeps
# each audio consumer's history at 40 KB instead of 320 KB (issue 14: memory per participant)
HISTORY = {"video": 512, "audio": 64}
# the most bytes of one kept packet (a bigger one is sent but not kept): one slot of the history
SLOT = {"video": 1500, "audio": 640}
# what one frame lasts, in clock ticks: the least a timestamp moves on a rebase
_FRAME_TICKS = {"video": 3000, "audio": 960}
_CLOCK = {"video": 90000, "audio": 48000}
_B1_SEQ_TS = struct.Struct("!BHI")
_SEQ = struct.Struct("!H")
_SSRC = struct.Struct("!I")

Send = Callable[[bytes], None]
# bytes of IPv4 + UDP headers around every datagram: the link carries them, RTP counters do not
IP_UDP = 28
# the least bitrate a video publisher is asked for (libwebrtc's own floor is 30 kbit/s)
MIN_VIDEO_BITRATE = 30_000
# seconds over which a leg's traffic is measured for its video budget
BUDGET_WINDOW = 0.5
# the most of a leg's estimate the SFU's own retransmissions may take off what its publisher is asked
MAX_RESENT_SHARE = 0.25
# bytes SRTP adds to every RTP packet (the authentication tag)
SRTP_TAG = 10
# the share of the SFU's own estimate of a leg (transport-wide feedback) its publisher is asked for: see
# Outlet.video_budget
ASK_HEADROOM = 0.85


class Outlet:
    """Sends SRTP/SRTCP on one DTLS transport's ICE socket, synchronously.

    A host pair writes straight to the UDP socket; anything else (a TURN
    allocation) goes through aioice, in a task only if it has to wait.
    """

    def __init__(self, dtls: RTCDtlsTransport) -> None:
        self._dtls = dtls
        self._pairs = hooks.nominated_pairs(dtls)
        self._pair: Any = None
        self._write: Callable[[bytes], None] | None = None
        self._protect: Callable[[bytes], bytes] | None = None
        self._protect_rtcp: Callable[[bytes], bytes] | None = None
        self._pending: set[asyncio.Task[Any]] = set()
        self.packets = 0
        self.bytes = 0
        self.budget = LegBudget()
        # transport-wide congestion control (sfu/bwe.py): the extension's id and the leg's estimator
        self.transport_cc: int | None = None
        self.bwe: SendSideEstimator | None = None
        # the playout-delay extension's id, when the subscriber negotiated it (sfu/playout.py)
        self.playout_delay: int | None = None
        self.rtt: Callable[[], float | None] = lambda: None
        self._on_estimate: list[Callable[[int], None]] = []
        self._on_lost: list[Callable[[int, float], None]] = []
        self.malformed_feedback = 0

    def use_transport_cc(self, extension_id: int) -> None:
        """Number what the leg sends with the transport-wide extension `extension_id` and estimate the
        subscriber's downlink from its feedback (instead of its REMB)."""
        self.transport_cc = extension_id
        self.bwe = SendSideEstimator()

    @property
    def send_log(self) -> SendLog | None:
        return self.bwe.log if self.bwe is not None else None

    def on_estimate(self, callback: Callable[[int], None]) -> None:
        """Call `callback(bitrate)` with every new estimate of the leg from transport-wide feedback."""
        self._on_estimate.append(callback)

    def on_lost(self, egress: RtpEgress, callback: Callable[[int, float], None]) -> None:
        """Call `callback(sequence number, seconds since sent)` for each packet of `egress` the subscriber's
        transport-wide feedback reports lost (a retransmission: with the original's sequence number)."""
        egress.stream = len(self._on_lost)
        self._on_lost.append(callback)

    def rtcp_received(self, plain: bytes) -> None:
        """A plain RTCP compound from the subscriber: its transport-wide feedback feeds the estimator."""
        if self.bwe is None:
            return
        for packet in twcc.feedback_packets(plain):
            try:
                feedback = twcc.parse_feedback(packet)
            except ValueError:
                self.malformed_feedback += 1
                continue
            self.transport_feedback(feedback.packets, time.time())

    def transport_feedback(self, packets: list[tuple[int, float | None]], now: float) -> None:
        """The subscriber's transport-wide feedback: (sequence number, arrival or None if lost) per packet."""
        if self.bwe is None:
            return
        estimate = self.bwe.feedback(packets, now, self.rtt())
        for callback in self._on_estimate:
            callback(estimate)
        if self._on_lost:  # after the estimate: a collapse marks what is no longer worth resending
            log, lost = self.bwe.log, self._on_lost
            for seq, arrival in packets:
                if arrival is None and (carried := log.carried(seq)) is not None and carried[0] < len(lost):
                    lost[carried[0]](carried[1], now - carried[2])

    def carries(self, egress: RtpEgress) -> None:
        """Count `egress` among the leg's streams (for `video_budget`)."""
        self.budget.carries(egress)

    def video_budget(self, estimate: int, now: float) -> int:
        """What a video publisher may send when this leg's subscriber estimates `estimate` bit/s.

        When the estimate is the SFU's own (transport-wide feedback), the publisher
        is asked for ASK_HEADROOM of it; a subscriber's REMB is taken whole.  A direct
        call's sender runs its encoder under its own estimate and its pacer right
        behind it; through the SFU the publisher learns the subscriber's leg a
        feedback, a REMB and an encoder reaction later, and its keyframes and its
        pacer's bursts (2.5 times its rate) land on the narrow leg at once.  Asked for
        the whole estimate, a publisher behind a 300 kbit/s leg sent 250-280 kbit/s
        and went over the cap again and again (settled under it after 1.5-44 s in five
        runs, 87 packets a run lost for good); asked for 85 %, it settled within
        1.6-3.1 s in five runs out of five, with 61 lost (issue 18; libwebrtc's own
        AIMD backs off to the same 85 % of what the link carried).
        """
        if self.bwe is not None and self.bwe.feedbacks > 0:  # else the subscriber's REMB
            estimate = int(estimate * ASK_HEADROOM)
        return self.budget.video(estimate, now)

    def _refresh(self) -> bool:
        pair = self._pairs.get(1)
        self._pair = pair
        self._write = None
        if pair is None:
            return False
        tx = hooks.srtp_sessions(self._dtls)[1]
        if tx is None:
            return False
        self._protect, self._protect_rtcp = hooks.rtp_protector(tx), tx.protect_rtcp
        protocol, addr = pair.protocol, pair.remote_addr
        if hooks.is_plain_udp(protocol):
            self._write = lambda data: protocol.transport.sendto(data, addr)
        else:
            pending = self._pending
            self._write = lambda data: hooks.run_now(protocol.send_data(data, addr), pending)
        return True

    def send_rtp(self, data: bytes) -> None:
        """Protect and send one RTP packet (the hot path)."""
        if (self._pairs.get(1) is not self._pair or self._write is None) and not self._refresh():
            return
        try:
            out = self._protect(data)  # type: ignore[misc]
        except (pylibsrtp.Error, ValueError):
            return
        self.packets += 1
        self.bytes += len(out)
        self._write(out)  # type: ignore[misc]

    def send_rtcp(self, data: bytes) -> None:
        """Protect and send one RTCP compound packet (feedback towards the publisher)."""
        if (self._pairs.get(1) is not self._pair or self._write is None) and not self._refresh():
            return
        try:
            out = self._protect_rtcp(data)  # type: ignore[misc]
        except (pylibsrtp.Error, ValueError):
            return
        self._write(out)  # type: ignore[misc]


class LegBudget:
    """What a subscriber's video estimate leaves to its publisher's encoder.

    Chromium's REMB is a video estimate: without transport-wide congestion
    control its receive-side estimator is fed video packets only (audio is
    skipped), RTP headers and retransmissions included, and its growth is bounded
    by 1.5 times the video it receives.  A publisher's encoder spends what it is
    asked on its own video stream, its own RTP headers and retransmissions
    included.  What the subscriber's leg carries that the publisher knows nothing
    of is the SFU's own retransmissions to that subscriber: those are taken off.
    (Taking the leg's audio off as well, as this class did first, asked a publisher
    for ~100 kbit/s less than a video estimate that never counted the audio; the
    estimate, bounded by what arrived, could then only shrink: a publisher on a
    lossy uplink settled at ~120 kbit/s, and at 30 kbit/s in one run.)

    With transport-wide feedback the leg's estimate (sfu/bwe.py) counts every
    packet, the publisher's audio too; the publisher's own send-side estimate,
    which the figure asked caps, counts its audio as well (Chromium takes a REMB
    as the ceiling of everything it sends, audio, headers and packet overhead
    included).  So the same holds: only the SFU's own retransmissions come off.

    At most `MAX_RESENT_SHARE` of the estimate: right after a leg narrows, its
    subscriber NACKs what the full queue dropped and the SFU resends a burst (32
    packets in half a second when a leg fell to 300 kbit/s: 560 kbit/s of
    "overhead"); taking all of it off asked the publisher for the 30 kbit/s floor
    for a second and a half, and its encoder, starved, dropped frames: freezes.
    Steady retransmissions (a few % of the leg) still come off whole.
    """

    def __init__(self) -> None:
        self._video: weakref.WeakSet[RtpEgress] = weakref.WeakSet()
        self._sample: tuple[float, int] | None = None  # (time, retransmitted bytes on the wire)
        self.overhead = 0.0  # bit/s of the SFU's own video retransmissions on the leg, last measured

    def carries(self, egress: RtpEgress) -> None:
        if egress.kind == "video":
            self._video.add(egress)

    def video(self, estimate: int, now: float) -> int:
        """The bitrate to ask a video publisher for when the subscriber's leg is estimated at `estimate`."""
        resent = sum(e.retransmitted_octets + (IP_UDP + SRTP_TAG) * e.retransmitted for e in self._video)
        if self._sample is None:
            self._sample = (now, resent)
        elif now - self._sample[0] >= BUDGET_WINDOW:
            at, resent0 = self._sample
            self.overhead = max(0.0, 8 * (resent - resent0) / (now - at))
            self._sample = (now, resent)
        # never below a floor a browser can encode at, never above the estimate itself
        taken = min(self.overhead, MAX_RESENT_SHARE * estimate)
        return min(estimate, max(MIN_VIDEO_BITRATE, int(estimate - taken)))


# the subscriber-reported loss above which its leg is taken as congested, and below which the loss-based
# ceiling may grow again (libwebrtc's loss-based controller: 10 % and 2 %)
CONGESTED_LOSS = 0.10
CLEAR_LOSS = 0.02
# seconds of receiver reports a loss figure is taken over: one report block can cover a few packets
LOSS_WINDOW = 1.0
# and the fewest packets it covers: of 15 packets (a still picture's second) 2 lost is "13 %", which a
# 5 % random loss gives one window in six (libwebrtc waits for 20; at 50, 5 % loss goes over 10 % in one
# window of 26); a window still short of it after MAX_LOSS_WINDOW is dropped unjudged
LOSS_WINDOW_PACKETS = 50
MAX_LOSS_WINDOW = 5.0
# how much the ceiling grows a second while the leg's loss is under CLEAR_LOSS
GROWTH = 1.08


class LossCeiling:
    """A loss-based ceiling for what a video publisher is asked, from one subscriber's receiver reports.

    Chromium's REMB is delay-based.  Behind a drop-tail queue that stays full the
    delay stops growing, and REMB stops falling while a fifth of the packets are
    dropped (issue 18: a 300 kbit/s downlink carrying ~80 kbit/s of RED audio
    beside video asked for 180 kbit/s; the relay dropped 20 % of what it was
    offered).  A browser sender runs the loss-based half of its congestion control
    on the receiver reports it gets, but the SFU answers for the publisher's uplink
    only: the subscriber's downlink loss stops at the SFU.  So the SFU runs that
    half for each subscriber leg, as libwebrtc does: over `LOSS_WINDOW`, above 10 %
    loss the ceiling falls to what the leg was sending times (1 - loss/2); below
    2 % it grows 8 % a second until it no longer binds; in between it holds.
    (It grew 8 % a window at first: a window at a starved leg's 20 packets a
    second spans 2.5 s, and after the cap's step the doctor's camera was held at
    140-230 kbit/s for 20 s while the leg carried 270.)
    Unlike libwebrtc, a cut needs two windows over 10 % in a row: at a steady 5 %
    of random loss one window in a few dozen goes over 10 % by chance, and since
    nothing lifts the ceiling between 2 and 10 % each such window ratcheted it
    down for good (issue 18: the doctor's camera towards a patient with 5 % loss
    settled at 550 kbit/s, direct 2.2 Mbit/s).  Congestion drops persist; the
    delay-based estimate acts well before the second window anyway.  A window
    also covers at least `LOSS_WINDOW_PACKETS` packets, and a cut starts from
    what the publisher is asked when the leg carried less than half of it (a
    still picture, app-limited): a static camera's 35 kbit/s with 2 of 15
    packets lost twice in a row put the ceiling, and the publisher's camera, at
    the 30 kbit/s floor, where Chromium's loss-based estimate then kept it with
    the loss going on (tests/e2e/test_resilience.py, 2026-12-05).

    The loss is the leg's own: of the sequence numbers the report covers, those
    the SFU sent (its history says which) and the subscriber did not receive
    (retransmissions count as received).  The report's own loss figure also
    counts what the SFU never sent because the publisher's uplink lost it,
    which is not the subscriber's leg's doing.  Counting what was sent by the
    clock instead (packets sent between two reports) was off by what was in
    flight, up to ±15 % a window at the low packet rates of a starved leg: it
    put the ceiling at the floor on a leg with 2 % bursty loss.
    """

    def __init__(self) -> None:
        self.ceiling: int | None = None  # bit/s; None: loss does not limit the leg
        self._sample: tuple[float, int, int, int] | None = None  # (time, highest, lost, octets)
        self.loss = 0.0  # the last window's fraction lost on the leg
        self._congested = False  # whether the window before was over CONGESTED_LOSS

    def report(self, highest: int, lost: int, sent: Callable[[int, int], int], octets: int, now: float,
               estimate: int | None) -> int | None:
        """A receiver report block for the leg's video: extended highest sequence number and cumulative
        packets lost (RFC 3550 6.4.1); `sent(a, b)`: how many of the sequence numbers after `a` up to `b`
        the SFU sent; `octets`: the video octets sent so far; `estimate`: the delay-based estimate."""
        if self._sample is None:
            self._sample = (now, highest, lost, octets)
            return self.ceiling
        at, highest0, lost0, octets0 = self._sample
        if now - at < LOSS_WINDOW or highest <= highest0:
            return self.ceiling
        covered = sent(highest0, highest)
        if 0 <= covered < LOSS_WINDOW_PACKETS and now - at < MAX_LOSS_WINDOW:
            return self.ceiling  # too few packets to tell a loss rate: the window goes on
        self._sample = (now, highest, lost, octets)
        if covered < LOSS_WINDOW_PACKETS:  # longer than the history, or a trickle: not judged
            return self.ceiling
        received = (highest - highest0) - (lost - lost0)
        self.loss = min(1.0, max(0.0, (covered - received) / covered))
        congested, self._congested = self._congested, self.loss > CONGESTED_LOSS
        if self.loss > CONGESTED_LOSS and congested:
            rate = 8 * (octets - octets0) / (now - at)
            asked = self.ceiling if self.ceiling is not None else estimate
            # the leg carried what it was asked for: the link is full at that; far less (a still
            # picture): the rate says nothing of the link, and the cut starts from what is asked
            base = rate if asked is None or rate >= APP_LIMITED * asked else asked
            if self.ceiling is not None:
                base = min(self.ceiling, base)
            self.ceiling = max(MIN_VIDEO_BITRATE, int(base * (1 - self.loss / 2)))
        elif self.loss < CLEAR_LOSS and self.ceiling is not None:
            # 8 % a second, as libwebrtc's loss-based controller grows (over the least of the last second,
            # at every receiver report): a window spans a second or more, longer at a low packet rate
            self.ceiling = int(self.ceiling * GROWTH ** min(now - at, MAX_LOSS_WINDOW)) + 1000
            if estimate is not None and self.ceiling >= estimate:
                self.ceiling = None
        return self.ceiling


class LegParameters:
    """What the subscriber leg negotiated, read when its sender starts."""

    def __init__(self, sender: RTCRtpSender, parameters: RTCRtpSendParameters,
                 transport_cc: int | None = None, playout_delay: int | None = None) -> None:
        codec = parameters.codecs[0]
        self.codec = codec.name.lower()
        assert codec.payloadType is not None  # set by the negotiation
        self.payload_type: int = codec.payloadType
        self.rtx_payload_type: int | None = None
        for c in parameters.codecs:
            if c.name.lower() == "rtx" and c.parameters.get("apt") == codec.payloadType:
                self.rtx_payload_type = c.payloadType
                break
        # every codec of the leg by name: audio may go as RED or as plain Opus (sfu/red.py)
        self.payload_types = {c.name.lower(): c.payloadType for c in parameters.codecs if c.payloadType is not None}
        self.ssrc, self.rtx_ssrc = hooks.sender_ssrcs(sender)
        self.mid = parameters.muxId
        # the transport-wide sequence number's extension id, when negotiated (aiortc does not know it)
        self.transport_cc = transport_cc
        # the playout-delay extension's id, when negotiated (video; sfu/playout.py)
        self.playout_delay = playout_delay
        if transport_cc is not None:
            parameters = dataclasses.replace(parameters, headerExtensions=[
                *parameters.headerExtensions, RTCRtpHeaderExtensionParameters(id=transport_cc, uri=twcc.URI)])
        self.extensions = HeaderExtensionsMap()
        self.extensions.configure(parameters)


class RtpEgress:
    """Rewrites one producer's packets for one subscriber leg and sends them with `send`.

    Sequence numbers and timestamps continue across every rebase (a new
    producer, the gate reopening), so the subscriber sees one stream.
    """

    def __init__(self, kind: str, leg: LegParameters, send: Send, log: SendLog | None = None) -> None:
        self.kind = kind
        self.codec = leg.codec
        self._leg = leg
        self._send = send
        self._pt = leg.payload_type
        self._clock = _CLOCK[kind]
        self._min_step = _FRAME_TICKS[kind]
        # the fixed header: V=2, X=1, marker/PT, seq, ts, our SSRC, then extensions
        self._header, self._ast_at, self._level_at, self._tseq_at, self._playout_at = _header_template(leg, kind)
        # the playout-delay extension's bytes, written into every packet when negotiated (sfu/playout.py)
        self.playout_delay = playout.NONE
        # numbers every packet for transport-wide feedback (the leg's send log), when negotiated
        self._log = log if self._tseq_at else None
        self.stream = NO_STREAM  # this egress's index in the log, when the leg reports its losses to it
        self._seq_off = 0
        self._ts_off = 0
        self._first_in = 0  # the first input sequence number since the last rebase
        self._last_seq: int | None = None
        self._last_ts = 0
        self._last_at = 0.0
        self._rtx_seq = random.randrange(0x8000)
        # The history is one anonymous mapping of HISTORY fixed slots, written in place.  Kept
        # as one bytes object per packet, it made the server's heap creep for as long as media
        # flowed (+1 MB a minute per 4 rooms, allocated total flat: a ring of medium-lived blocks
        # of varying sizes among short-lived ones fragments glibc's heap; issue 17 item 9).
        # Pages are only resident once written, and unmapped with the consumer.
        self._slot = SLOT[kind]
        self._depth = HISTORY[kind]
        self._history: mmap.mmap | None = None
        self._sizes = array.array("H", bytes(2 * self._depth))  # plain numbers: no object per packet either
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0
        self.retransmitted_octets = 0  # whole datagrams, before SRTP

    def rebase(self, packet: Packet, now: float) -> None:
        """Map `packet` to the next sequence number and a timestamp after the last one sent."""
        if self._last_seq is None:
            seq, ts = random.randrange(0x8000), random.getrandbits(32)
        else:
            seq = (self._last_seq + 1) & 0xFFFF
            step = max(self._min_step, round((now - self._last_at) * self._clock))
            ts = (self._last_ts + step) & 0xFFFFFFFF
        self._first_in = packet.sequence_number
        self._seq_off = (seq - packet.sequence_number) & 0xFFFF
        self._ts_off = (ts - packet.timestamp) & 0xFFFFFFFF

    @property
    def last_sequence_number(self) -> int | None:
        """The leg's sequence number of the newest packet sent (None before the first)."""
        return self._last_seq

    @property
    def first_sequence_number(self) -> int:
        """The leg's sequence number of the first packet since the last rebase."""
        return (self._first_in + self._seq_off) & 0xFFFF

    @property
    def payload_types(self) -> dict[str, int]:
        return self._leg.payload_types

    def send(self, packet: Packet, now: float, payload_type: int | None = None) -> None:
        """Forward one packet (the hot path: once per packet and subscriber), as `payload_type`
        if given, else as the leg's first codec."""
        seq_in = packet.sequence_number
        age = (seq_in - self._first_in) & 0xFFFF
        if age >= 0x8000:
            return  # older than the rebase: belongs to what came before the gate
        if age > 0x4000:  # keep the mark behind us as the sequence numbers wrap
            self._first_in = (seq_in - 0x1000) & 0xFFFF
        seq = (seq_in + self._seq_off) & 0xFFFF
        ts = (packet.timestamp + self._ts_off) & 0xFFFFFFFF
        header = bytearray(self._header)
        _B1_SEQ_TS.pack_into(header, 1, (packet.marker << 7) | (self._pt if payload_type is None else payload_type),
                             seq, ts)
        a = self._ast_at
        if a:
            ast = int((now + NTP_OFFSET) * 262144)  # 6.18 fixed point seconds
            header[a] = (ast >> 16) & 0xFF
            header[a + 1] = (ast >> 8) & 0xFF
            header[a + 2] = ast & 0xFF
        if self._playout_at:
            p = self._playout_at
            header[p:p + 3] = self.playout_delay
        if self._level_at:
            level = packet.audio_level
            header[self._level_at] = ((0x80 if level[0] else 0) | (level[1] & 0x7F)) if level else 0x7F
        payload = packet.payload
        if packet.padding_size:
            header[0] |= 0x20
            payload = payload + bytes(packet.padding_size - 1) + bytes([packet.padding_size])
        log = self._log
        if log is not None:
            _SEQ.pack_into(header, self._tseq_at,
                           log.next(now, len(header) + len(payload) + SRTP_TAG + IP_UDP, self.stream, seq))
        data = b"".join((header, payload))
        self._keep(seq, data)
        last = self._last_seq
        if last is None or ((seq - last) & 0xFFFF) < 0x8000:
            self._last_seq = seq
            self._last_ts = ts
            self._last_at = now
        self.packets += 1
        self.octets += len(packet.payload)
        self._send(data)

    def _keep(self, seq: int, data: bytes) -> None:
        size = len(data)
        if size > self._slot:
            self._sizes[seq % self._depth] = 0  # not kept: a NACK for it is answered "gone"
            return
        if self._history is None:
            self._history = mmap.mmap(-1, self._depth * self._slot)
        at = (seq % self._depth) * self._slot
        self._history[at:at + size] = data
        self._sizes[seq % self._depth] = size

    def counts(self) -> tuple[int, int, int, int]:
        """(NTP time, RTP timestamp, packets, octets) for the leg's sender report (RFC 3550 6.4.1)."""
        return _ntp(self._last_at), self._last_ts, self.packets, self.octets

    def kept(self, seq: int) -> bool:
        """Whether the history can send packet `seq` again."""
        i = seq % self._depth
        return bool(self._sizes[i]) and self._history is not None \
            and _SEQ.unpack_from(self._history, i * self._slot + 2)[0] == seq

    def sent_between(self, after: int, upto: int) -> int:
        """How many sequence numbers after `after` up to `upto` (extended or not) were sent, as far as
        the history remembers (-1: the span is longer than the history)."""
        span = upto - after
        if span > self._depth or span < 0:
            return -1
        kept = self.kept
        return sum(1 for seq in range(after + 1, upto + 1) if kept(seq & 0xFFFF))

    def gone(self, seq: int) -> bool:
        """Whether `seq` is older than what the history keeps (sent, then pushed out).

        A sequence number inside the history's span that it does not hold was
        never sent: the SFU did not get that packet (lost on the publisher's leg,
        which repairs it) or it was too big to keep."""
        last = self._last_seq
        return last is not None and self._depth <= ((last - seq) & 0xFFFF) < 0x8000

    def retransmit(self, seq: int) -> bool:
        """Send again a packet the subscriber lost; RTX when negotiated. False if not kept."""
        if not self.kept(seq):
            return False
        i = seq % self._depth
        at = i * self._slot
        data = self._history[at:at + self._sizes[i]]  # type: ignore[index]
        out = bytearray(data)
        if self._ast_at:
            a = self._ast_at
            ast = int((time.time() + NTP_OFFSET) * 262144)
            out[a:a + 3] = bytes(((ast >> 16) & 0xFF, (ast >> 8) & 0xFF, ast & 0xFF))
        leg = self._leg
        if leg.rtx_payload_type is not None:
            # RFC 4588: RTX SSRC and sequence, the original sequence number first in the payload
            size = len(self._header)
            out[1] = (out[1] & 0x80) | leg.rtx_payload_type
            out[2:4] = _SEQ.pack(self._rtx_seq)
            out[8:12] = _SSRC.pack(leg.rtx_ssrc)
            out[size:size] = _SEQ.pack(seq)
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        if self._log is not None:
            _SEQ.pack_into(out, self._tseq_at,
                           self._log.next(time.time(), len(out) + SRTP_TAG + IP_UDP, self.stream, seq))
        self.retransmitted += 1
        self.retransmitted_octets += len(out)
        self._send(bytes(out))
        return True


def _ntp(unix: float) -> int:
    return int((unix + NTP_OFFSET) * (1 << 32))


def _header_template(leg: LegParameters, kind: str) -> tuple[bytes, int, int, int, int]:
    """The header bytes for `leg` and where abs-send-time, audio-level, the transport-wide sequence
    number and the playout delay sit (0: absent).

    aiortc serializes the extensions with different values; the bytes that
    differ are the ones to fill per packet.  It knows nothing of playout delay:
    that element is appended to the one-byte extension block here.
    """

    def serialize(ast: int = 0, level: tuple[bool, int] = (False, 0), tseq: int = 0) -> bytes:
        p = RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=leg.ssrc)
        p.extensions.mid = leg.mid
        p.extensions.abs_send_time = ast
        if kind == "audio":
            p.extensions.audio_level = level
        if leg.transport_cc is not None:
            p.extensions.transport_sequence_number = tseq
        return p.serialize(leg.extensions)

    base = serialize()

    def where(other: bytes) -> int:
        return next((i for i in range(len(base)) if base[i] != other[i]), 0)

    if len(base) == 12:  # nothing negotiated by aiortc: no extension block
        ast_at = level_at = tseq_at = 0
    else:
        ast_at = where(serialize(ast=0xFFFFFF))
        level_at = where(serialize(level=(True, 127))) if kind == "audio" else 0
        tseq_at = where(serialize(tseq=0xFFFF)) if leg.transport_cc is not None else 0
    playout_at = 0
    if kind == "video" and leg.playout_delay is not None:  # after the others: it moves none of them
        base, playout_at = _append_element(base, leg.playout_delay, playout.NONE)
    return base, ast_at, level_at, tseq_at, playout_at


def _append_element(header: bytes, ext_id: int, data: bytes) -> tuple[bytes, int]:
    """`header` (RTP, no CSRC) with a one-byte-header extension element (RFC 8285) appended, and where its
    data sits."""
    elements = b""
    if header[0] & 0x10:
        words = int.from_bytes(header[14:16], "big")
        block, at = header[16:16 + 4 * words], 0
        while at < len(block) and block[at]:  # elements end at the padding
            at += 2 + (block[at] & 0x0F)
        elements = block[:at]
    at = 16 + len(elements) + 1
    elements += bytes([(ext_id << 4) | (len(data) - 1)]) + data
    elements += bytes(-len(elements) % 4)
    return bytes([header[0] | 0x10]) + header[1:12] + b"\xbe\xde" + (len(elements) // 4).to_bytes(2, "big") + elements, at
