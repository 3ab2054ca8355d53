"""Pre-packetised media over raw SRTP sockets, for a load generator that is not the bottleneck.

aiortc sets up each peer connection (SDP, ICE, DTLS) once; from then on its
RTP path is bypassed both ways (the same private hooks as the SFU's,
`sfu.aiortc_hooks`): frames of the pre-encoded loop (`bench_media`) are cut
into VP8/Opus RTP packets once, and each sending stream only writes a
12-byte header (+ the 4-byte VP8 descriptor), SRTP-protects with
pylibsrtp's C call (the SFU's lean binding, without pylibsrtp's per-call
wrapper) and `sendto`s; received SRTP is counted in the socket callback from
its header, which SRTP leaves in clear (packets, loss from sequence numbers,
frames, gaps); only a video frame's last packet is unprotected, for the
one-way latency in the 12-byte `LTCY` trailer the sender appends to it.  The
generator trusts the server under test: it authenticates only what it
decrypts.  One scheduler task paces every stream, each with its own phase,
waking at most once a millisecond, so bursts stay small.  PLI/FIR make a sender jump to
its next keyframe (as a browser encodes one); NACKs are answered from a
short history.  Like a browser, each peer connection sends a receiver report
and a REMB for what it receives about once a second.
"""

from __future__ import annotations

import asyncio
import heapq
import random
import struct
import time
from typing import Any

import pylibsrtp
from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket, pack_remb_fci

from bench_media import TRAILER_MAGIC, EncodedMedia, note_gap, read_trailer
from sfu import Consumer
from sfu import aiortc_hooks as hooks

CHUNK = 1150  # VP8 payload bytes per packet (with the descriptor and trailer: < 1200)
_HDR = struct.Struct("!BBHII")
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
HISTORY = 256
QUANTUM = 0.001  # the pacer's shortest sleep (s): the event loop's timer resolution


def silent_track(kind: str) -> MediaStreamTrack:
    """A track aiortc's sender waits on for ever (the raw sender sends instead): an SFU consumer before its leg is up."""
    return Consumer(kind, "bench")


class Packetised:
    """The media loop cut into RTP payloads once: video[i] = chunks of frame i; audio[i] = packet i."""

    def __init__(self, media: EncodedMedia) -> None:
        self.fps = media.fps
        self.keyframes = media.keyframes
        self.video = [[f[i:i + CHUNK] for i in range(0, len(f), CHUNK)] for f in media.video]
        self.audio = media.audio


class SendStream:
    """One outgoing track: pre-cut payloads, our header, SRTP, sendto."""

    def __init__(self, link: RawLink, kind: str, ssrc: int, payload_type: int, media: Packetised) -> None:
        self.link = link
        self.kind = kind
        self.ssrc = ssrc
        self.pt = payload_type
        self.media = media
        self.period = 1 / media.fps if kind == "video" else 0.02
        self.step = 90000 // media.fps if kind == "video" else 960
        self.seq = random.randrange(0x8000)
        self.ts = random.getrandbits(32)
        self.i = 0
        self.picture_id = random.randrange(0x8000)
        self.want_keyframe = False
        self.keyframe_requests = 0
        self.sent = 0
        self.history: list[bytes | None] = [None] * HISTORY

    def force_keyframe(self) -> None:
        self.keyframe_requests += 1
        self.want_keyframe = True

    def send_frame(self) -> None:
        send = self.link.send_rtp
        if self.kind == "audio":
            data = self.media.audio[self.i % len(self.media.audio)]
            self.i += 1
            self._packet(data, 1, send)
        else:
            n = len(self.media.video)
            if self.want_keyframe:
                self.want_keyframe = False
                if self.i % n not in self.media.keyframes:
                    self.i = next((k for k in self.media.keyframes if k > self.i % n), n)
            chunks = self.media.video[self.i % n]
            self.i += 1
            pid = _U16.pack(0x8000 | self.picture_id)
            self.picture_id = (self.picture_id + 1) & 0x7FFF
            last = len(chunks) - 1
            for k, chunk in enumerate(chunks):
                descriptor = (b"\x90\x80" if k == 0 else b"\x80\x80") + pid  # X, S on the first; I: 15-bit id
                if k == last:
                    self._packet(b"".join((descriptor, chunk, TRAILER_MAGIC, struct.pack(">Q", time.monotonic_ns()))),
                                 1, send)
                else:
                    self._packet(descriptor + chunk, 0, send)
        self.ts = (self.ts + self.step) & 0xFFFFFFFF

    def _packet(self, payload: bytes, marker: int, send: Any) -> None:
        data = _HDR.pack(0x80, (marker << 7) | self.pt, self.seq, self.ts, self.ssrc) + payload
        self.history[self.seq % HISTORY] = data
        self.seq = (self.seq + 1) & 0xFFFF
        self.sent += 1
        send(data)

    def resend(self, seq: int) -> None:
        data = self.history[seq % HISTORY]
        if data is not None and _U16.unpack_from(data, 2)[0] == seq:
            self.link.send_rtp(data)


class RecvStream:
    """What one incoming SSRC delivered: packets, loss, frames, gaps, latency."""

    def __init__(self, kind: str, label: str) -> None:
        self.kind = kind
        self.label = label
        self.packets = 0
        self.base: int | None = None
        self.top = 0  # extended highest sequence number
        self.frames = 0
        self.latencies_us: list[int] = []
        self.last_at: int | None = None
        self.max_gap_s = 0.0
        self.gaps = 0
        self.gap_events: list[tuple[float, int]] = []
        self.no_trailer = 0

    @property
    def expected(self) -> int:
        return 0 if self.base is None else self.top - self.base + 1

    def reset_window(self) -> None:
        self.frames = 0
        self.latencies_us = []
        self.max_gap_s = 0.0
        self.gaps = 0
        self.gap_events = []

    def add(self, data: bytes, marker: int, seq: int, now: int) -> None:
        self.packets += 1
        if self.base is None:
            self.base = self.top = seq
        else:
            delta = (seq - self.top) & 0xFFFF
            if delta < 0x8000:
                self.top += delta
        if self.kind == "video" and not marker:
            return
        self.frames += 1
        note_gap(self, now)
        if self.kind == "video" and not read_trailer(self, now, data):
            self.no_trailer += 1


class RawLink:
    """One connected peer connection's DTLS transport, read and written without aiortc's RTP path."""

    def __init__(self, pc: RTCPeerConnection, name: str, media: Packetised, silent: set[Any]) -> None:
        transceivers = pc.getTransceivers()
        self.dtls = transceivers[0].sender.transport
        self.name = name
        self.rx, self.tx = hooks.srtp_sessions(self.dtls)
        assert self.rx is not None and self.tx is not None, "connect first"
        self.protect = hooks.rtp_protector(self.tx)
        self.unprotect = hooks.rtp_unprotector(self.rx)
        self.pairs = hooks.nominated_pairs(self.dtls)
        self.senders: dict[int, SendStream] = {}
        self.receivers: dict[int, RecvStream] = {}
        self.kind_of_pt: dict[int, str] = {}
        self.rtx_pts: set[int] = set()
        self.retransmissions = 0
        self.rtcp_ssrc = hooks.sender_ssrcs(transceivers[0].sender)[0]
        self.period = 1.0  # receiver reports: paced like a stream
        for t in transceivers:
            codecs = hooks.negotiated_codecs(t)
            for c in codecs:
                assert c.payloadType is not None
                if c.name.lower() == "rtx":
                    self.rtx_pts.add(c.payloadType)
                else:
                    self.kind_of_pt[c.payloadType] = t.kind
            if t.direction in ("sendrecv", "sendonly") and t not in silent and codecs:
                ssrc = hooks.sender_ssrcs(t.sender)[0]
                pt = codecs[0].payloadType
                assert pt is not None
                self.senders[ssrc] = SendStream(self, t.kind, ssrc, pt, media)
        for protocol in hooks.ice_protocols(self.dtls):
            hooks.intercept_datagrams(protocol, self._datagram)

    def send_rtp(self, data: bytes) -> None:
        pair = self.pairs.get(1)
        if pair is not None:
            pair.protocol.transport.sendto(self.protect(data), pair.remote_addr)

    def send_reports(self) -> None:
        """RR for every stream received, and a REMB for the video ones (what a browser sends)."""
        if not self.receivers:
            return
        reports = [RtcpReceiverInfo(ssrc=ssrc, fraction_lost=0, packets_lost=max(0, r.expected - r.packets),
                                    highest_sequence=r.top & 0xFFFFFFFF, jitter=0, lsr=0, dlsr=0)
                   for ssrc, r in list(self.receivers.items())[:31]]
        data = bytes(RtcpRrPacket(ssrc=self.rtcp_ssrc, reports=reports))
        video = [ssrc for ssrc, r in self.receivers.items() if r.kind == "video"]
        if video:
            data += bytes(RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=self.rtcp_ssrc, media_ssrc=0,
                                         fci=pack_remb_fci(2_000_000, video)))
        pair = self.pairs.get(1)
        if pair is not None:
            pair.protocol.transport.sendto(self.tx.protect_rtcp(data), pair.remote_addr)  # type: ignore[union-attr]

    def _datagram(self, data: bytes, addr: Any, aioice: Any) -> None:
        if not data or not 127 < data[0] < 192:
            aioice(data, addr)
            return
        if len(data) < 12:  # shorter than an RTP header or an SRTCP packet
            return
        if 191 < data[1] < 224:
            try:
                self._rtcp(self.rx.unprotect_rtcp(data))  # type: ignore[union-attr]
            except pylibsrtp.Error:
                pass
            return
        _b0, b1, seq, _ts, ssrc = _HDR.unpack_from(data)  # SRTP encrypts the payload, not the header
        pt = b1 & 0x7F
        if pt in self.rtx_pts:
            self.retransmissions += 1
            return
        stream = self.receivers.get(ssrc)
        if stream is None:
            kind = self.kind_of_pt.get(pt)
            if kind is None:
                return
            stream = self.receivers[ssrc] = RecvStream(kind, f"{self.name}-{kind}-{ssrc}")
        if stream.kind == "video" and b1 & 0x80:  # a frame's last packet: its trailer holds the send time
            try:
                data = self.unprotect(data)
            except pylibsrtp.Error:
                return
        stream.add(data, b1 >> 7, seq, time.monotonic_ns())

    def _rtcp(self, data: bytes) -> None:
        # compound packet: PLI (206/1), FIR (206/4), NACK (205/1) towards our senders
        i = 0
        while i + 12 <= len(data):
            fmt, pt = data[i] & 0x1F, data[i + 1]
            length = 4 * (_U16.unpack_from(data, i + 2)[0] + 1)
            media = _U32.unpack_from(data, i + 8)[0]
            if pt == 206 and fmt == 1 and media in self.senders:
                self.senders[media].force_keyframe()
            elif pt == 206 and fmt == 4 and i + 20 <= len(data):
                target = self.senders.get(_U32.unpack_from(data, i + 12)[0])
                if target is not None:
                    target.force_keyframe()
            elif pt == 205 and fmt == 1 and media in self.senders:
                for j in range(i + 12, min(i + length, len(data)) - 3, 4):
                    pid, blp = _U16.unpack_from(data, j)[0], _U16.unpack_from(data, j + 2)[0]
                    for seq in [pid] + [(pid + b + 1) & 0xFFFF for b in range(16) if blp >> b & 1]:
                        self.senders[media].resend(seq)
            i += length


class Pacer:
    """Sends every stream's frames (and every link's reports) on time from one task, at spread phases."""

    def __init__(self, tick: float = 0.002) -> None:
        self.tick = tick
        self._heap: list[tuple[float, int, Any]] = []
        self._n = 0
        self._task: asyncio.Task[None] | None = None

    def add(self, stream: SendStream) -> None:
        self._push(stream, stream.period)

    def add_reports(self, link: RawLink) -> None:
        self._push(link, link.period)

    def _push(self, item: Any, period: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + random.random() * period, self._n, item))
        self._n += 1

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        heap = self._heap
        while True:
            now = time.monotonic()
            while heap and heap[0][0] <= now:
                due, n, stream = heapq.heappop(heap)
                if isinstance(stream, RawLink):
                    stream.send_reports()
                else:
                    stream.send_frame()
                # never fall behind by more than one frame (a stalled box skips, not bursts)
                heapq.heappush(heap, (max(due + stream.period, now - stream.period), n, stream))
            # uvloop's timers count whole milliseconds: a shorter sleep returns at once, and a pacer that
            # slept until each stream's own due time spun through ~30,000 empty wake-ups a second at 32 rooms
            # (most of the generator's core); what falls due within the same millisecond goes out together
            wait = self.tick if not heap else heap[0][0] - time.monotonic()
            await asyncio.sleep(min(self.tick, max(QUANTUM, wait)))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
