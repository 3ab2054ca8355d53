"""RTP-level forwarding: packets go out as they come in, rewritten for each subscriber.

The publisher's `RTCRtpReceiver` keeps doing what aiortc does well (SRTP,
NACK towards the publisher, RTX unwrapping, REMB estimation, receiver
reports); its jitter buffer is replaced by `PacketTap`, which hands every
accepted packet to the producer at once.  Each consumer owns an `RtpEgress`
that rewrites SSRC, payload type, sequence number, timestamp and header
extensions for its subscriber leg, SRTP-protects the packet with that leg's
keys and sends it, synchronously, without any queue or task.  The
subscriber's NACKs are answered from the egress's own history (RTX when
negotiated).  The leg's `RTCRtpSender` only runs its RTCP loop, fed with our
counters so its sender reports stay right.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
import time
from collections.abc import Coroutine
from typing import Any, Callable

import pylibsrtp
from aiortc import clock
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtcrtpsender import RTCRtpSender
from aiortc.rtp import HeaderExtensionsMap, RtpPacket, is_rtcp

logger = logging.getLogger(__name__)

# seconds between 1900 (NTP) and 1970 (Unix)
_NTP_OFFSET = 2208988800
# packets kept per consumer to answer NACKs (~1.5 s of 1 Mbit/s video)
HISTORY = 512
# what one frame lasts, in clock ticks: the least a timestamp moves on a rebase
_FRAME_TICKS = {"video": 3000, "audio": 960}
_CLOCK = {"video": 90000, "audio": 48000}
_B1_SEQ_TS = struct.Struct("!BHI")
_SEQ = struct.Struct("!H")
_SSRC = struct.Struct("!I")


def is_keyframe_start(codec: str, payload: bytes) -> bool:
    """Whether an RTP payload is the first packet of a picture that decodes on its own."""
    if not payload:
        return False
    if codec == "vp8":
        return _vp8_keyframe_start(payload)
    if codec == "h264":
        return _h264_keyframe_start(payload)
    return True  # audio packets stand alone


def _vp8_keyframe_start(p: bytes) -> bool:
    # RFC 7741 4.2: payload descriptor, then the VP8 payload header (RFC 6386 9.1)
    b0 = p[0]
    if not b0 & 0x10 or b0 & 0x07:  # S bit set and partition index 0
        return False
    i = 1
    if b0 & 0x80:  # X: extended control bits
        if len(p) < 2:
            return False
        x = p[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if len(p) <= i:
                return False
            i += 2 if p[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    return len(p) > i and not p[i] & 0x01  # P bit 0: key frame


def _h264_keyframe_start(p: bytes) -> bool:
    # RFC 6184: an IDR slice or an SPS, alone, in a STAP-A, or at an FU-A's start
    nal = p[0] & 0x1F
    if nal in (5, 7):
        return True
    if nal == 24:  # STAP-A: (16-bit size, NAL unit)*
        i = 1
        while i + 2 < len(p):
            size = (p[i] << 8) | p[i + 1]
            if p[i + 2] & 0x1F in (5, 7):
                return True
            i += 2 + size
        return False
    if nal == 28 and len(p) > 1:  # FU-A: start bit and the fragmented NAL's type
        return bool(p[1] & 0x80) and p[1] & 0x1F in (5, 7)
    return False


class PacketTap(JitterBuffer):
    """Stands in for the receiver's jitter buffer: every accepted packet goes to `on_packet`.

    The receiver calls `add` after RTX unwrapping, NACK bookkeeping and
    depayloading.  Frames are assembled only while `frames` holds a buffer
    (a frame sink is attached); its frames are returned or emitted as that
    buffer does.
    """

    def __init__(self, on_packet: Callable[[RtpPacket], None]) -> None:
        super().__init__(capacity=16)
        self._on_packet = on_packet
        self.frames: JitterBuffer | None = None
        self.sink: Any = None  # the receiver's decoder queue (receiver_hooks.FrameSink)

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        self._on_packet(packet)
        if self.frames is not None:
            return self.frames.add(packet)
        return False, None

    @property
    def frames_dropped(self) -> int:
        return getattr(self.frames, "frames_dropped", 0)


def run_now(coro: Coroutine[Any, Any, None], pending: set[asyncio.Task[None]]) -> None:
    """Run a coroutine that normally completes without waiting, here and now.

    aiortc's send path is a chain of coroutines that only reach a UDP
    `sendto`; a task per packet would cost more than the send.  Should the
    coroutine wait after all (a TURN channel being bound), a task finishes it.
    """
    try:
        waited = coro.send(None)
    except StopIteration:
        return
    except ConnectionError:
        return
    task = asyncio.ensure_future(_finish(coro, waited))
    pending.add(task)
    task.add_done_callback(pending.discard)


async def _finish(coro: Coroutine[Any, Any, None], waited: Any) -> None:
    try:
        while True:
            if isinstance(waited, asyncio.Future):
                await asyncio.wait([waited])
            else:
                await asyncio.sleep(0)
            waited = coro.send(None)
    except (StopIteration, ConnectionError):
        pass
    finally:
        coro.close()


def receive_directly(dtls: RTCDtlsTransport) -> None:
    """Handle SRTP/SRTCP datagrams as they arrive, without aioice's queue and aiortc's reader task.

    aiortc queues every datagram and wakes the DTLS transport's task to read
    it; here, once the DTLS handshake has given us SRTP keys, the packet is
    unprotected and handed to the RTP router (and so to the receiver, the
    producer and the consumers) within the socket callback.  Anything else
    (DTLS records, data channels, packets before the keys) still takes the queue.
    """
    connection = dtls.transport._connection
    enqueue = connection.data_received
    pending: set[asyncio.Task[None]] = set()

    def data_received(data: bytes, component: int) -> None:
        srtp = dtls._rx_srtp
        if srtp is None or not data or not 127 < data[0] < 192:
            enqueue(data, component)
            return
        dtls._RTCDtlsTransport__rx_bytes += len(data)  # type: ignore[attr-defined]
        dtls._RTCDtlsTransport__rx_packets += 1  # type: ignore[attr-defined]
        try:
            if is_rtcp(data):
                coro = dtls._handle_rtcp_data(srtp.unprotect_rtcp(data))
            else:
                arrival_ms = clock.current_ms()
                coro = dtls._handle_rtp_data(srtp.unprotect(data), arrival_time_ms=arrival_ms)
        except (pylibsrtp.Error, ValueError):  # ValueError: longer than pylibsrtp's buffer
            return  # replayed, forged or too long: what aiortc drops too
        try:
            run_now(coro, pending)
        except Exception:  # never let one packet break the socket's protocol
            logger.exception("RTP handling failed")

    connection.data_received = data_received  # type: ignore[method-assign]


class LegParameters:
    """What the subscriber leg negotiated, read when its sender starts."""

    def __init__(self, sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> None:
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
        self.ssrc = sender._ssrc
        self.rtx_ssrc = sender._rtx_ssrc
        self.mid = parameters.muxId
        self.extensions = HeaderExtensionsMap()
        self.extensions.configure(parameters)


class RtpEgress:
    """Rewrites one producer's packets for one subscriber leg and sends them.

    Sequence numbers and timestamps continue across every rebase (a new
    producer, the gate reopening), so the subscriber sees one stream.
    """

    def __init__(self, kind: str, sender: RTCRtpSender, leg: LegParameters) -> None:
        self.kind = kind
        self.codec = leg.codec
        self._sender = sender
        self._transport: RTCDtlsTransport = sender.transport
        self._leg = leg
        self._pending: set[asyncio.Task[None]] = set()
        self._clock = _CLOCK[kind]
        self._min_step = _FRAME_TICKS[kind]
        # the fixed header: V=2, X=1, marker/PT, seq, ts, our SSRC, then extensions
        self._header, self._ast_at, self._level_at = _header_template(leg, kind)
        self._seq_off = 0
        self._ts_off = 0
        self._first_in = 0  # the first input sequence number since the last rebase
        self._last_seq: int | None = None
        self._last_ts = 0
        self._last_at = 0.0
        self._rtx_seq = random.randrange(0x8000)
        self._history: list[bytes | None] = [None] * HISTORY
        self.packets = 0
        self.octets = 0
        self.retransmitted = 0

    def rebase(self, packet: RtpPacket, now: float) -> None:
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
    def payload_types(self) -> dict[str, int]:
        return self._leg.payload_types

    def send(self, packet: RtpPacket, now: float, payload_type: int | None = None) -> None:
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
        pt = self._leg.payload_type if payload_type is None else payload_type
        _B1_SEQ_TS.pack_into(header, 1, (packet.marker << 7) | pt, seq, ts)
        if self._ast_at:
            a = self._ast_at
            ast = int((now + _NTP_OFFSET) * 262144)  # 6.18 fixed point seconds
            header[a] = (ast >> 16) & 0xFF
            header[a + 1] = (ast >> 8) & 0xFF
            header[a + 2] = ast & 0xFF
        if self._level_at:
            level = packet.extensions.audio_level
            header[self._level_at] = ((0x80 if level[0] else 0) | (level[1] & 0x7F)) if level else 0x7F
        payload = packet.payload
        if packet.padding_size:
            header[0] |= 0x20
            payload = payload + bytes(packet.padding_size - 1) + bytes([packet.padding_size])
        data = bytes(header) + payload
        self._history[seq % HISTORY] = data
        # bookkeeping for the sender's RTCP SR (aiortc reads these name-mangled fields)
        diff = (seq - self._last_seq) & 0xFFFF if self._last_seq is not None else 1
        if diff < 0x8000:
            self._last_seq = seq
            self._last_ts = ts
            self._last_at = now
        self.packets += 1
        self.octets += len(packet.payload)
        sender = self._sender
        sender._RTCRtpSender__packet_count = self.packets  # type: ignore[attr-defined]
        sender._RTCRtpSender__octet_count = self.octets  # type: ignore[attr-defined]
        sender._RTCRtpSender__rtp_timestamp = self._last_ts  # type: ignore[attr-defined]
        sender._RTCRtpSender__ntp_timestamp = _ntp(self._last_at)  # type: ignore[attr-defined]
        run_now(self._transport._send_rtp(data), self._pending)

    def retransmit(self, seq: int) -> bool:
        """Send again a packet the subscriber lost; RTX when negotiated. False if gone."""
        data = self._history[seq % HISTORY]
        if data is None or _SEQ.unpack_from(data, 2)[0] != seq:
            return False
        out = bytearray(data)
        if self._ast_at:
            a = self._ast_at
            ast = int((time.time() + _NTP_OFFSET) * 262144)
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
        self.retransmitted += 1
        run_now(self._transport._send_rtp(bytes(out)), self._pending)
        return True


def _ntp(unix: float) -> int:
    return int((unix + _NTP_OFFSET) * (1 << 32))


def _header_template(leg: LegParameters, kind: str) -> tuple[bytes, int, int]:
    """The header bytes for `leg` and where abs-send-time and audio-level sit (0: absent).

    aiortc serializes the extensions twice with different values; the bytes
    that differ are the ones to fill per packet.
    """

    def serialize(ast: int, level: tuple[bool, int]) -> bytes:
        p = RtpPacket(payload_type=0, sequence_number=0, timestamp=0, ssrc=leg.ssrc)
        p.extensions.mid = leg.mid
        p.extensions.abs_send_time = ast
        if kind == "audio":
            p.extensions.audio_level = level
        return p.serialize(leg.extensions)

    a, b = serialize(0, (False, 0)), serialize(0xFFFFFF, (True, 127))
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    ast_at = next((i for i in diff if i + 2 in diff and i + 1 in diff), 0)
    level_at = next((i for i in diff if not ast_at or not ast_at <= i < ast_at + 3), 0)
    header = bytearray(a)
    if len(header) == 12:  # nothing negotiated: no extension block
        return bytes(header), 0, 0
    return bytes(header), ast_at, level_at
