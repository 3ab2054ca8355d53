"""RTP packets into whole encoded frames, for the recorder (Galène's diskwriter model).

The recorder subscribes to a producer like a consumer and gets its packets in
arrival order.  `Depacketizer` puts them back in sequence order (a small
bounded buffer: a gap is waited for while retransmissions can fill it, no
longer), strips the payload formats and assembles frames:

- VP8 (RFC 7741): payload descriptors stripped, partitions joined up to the marker;
- H.264 (RFC 6184, packetization-mode 1): single NAL units, STAP-A and FU-A into
  one Annex-B access unit (start codes) per RTP timestamp;
- Opus: one packet is one frame; RED (RFC 2198, sfu/red.py) is unwrapped to its primary block.

A video packet that is never filled in makes the frame it belonged to unusable,
and every frame after it until a keyframe: those are dropped and
`need_keyframe` is raised (the recorder asks the producer, which throttles).
"""

from __future__ import annotations

from dataclasses import dataclass

from sfu import red
from sfu.frames import is_keyframe
from sfu.packet import Packet

# packets held while a gap waits to be filled (a retransmission), and how much
# media time (seconds) the held packets may span before the gap counts as a loss
VIDEO_HOLD = 256
VIDEO_SPAN = 0.5
AUDIO_HOLD = 16
AUDIO_SPAN = 0.1
START = b"\x00\x00\x00\x01"
# a packet this many sequence numbers behind the expected one starts the stream again
RESTART = 1000


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole encoded frame with its RTP timestamp."""

    data: bytes
    timestamp: int
    keyframe: bool


def vp8_payload(payload: bytes) -> bytes:
    """The VP8 bytes of an RTP payload (RFC 7741 4.2: the payload descriptor removed)."""
    if not payload:
        raise ValueError("empty VP8 payload")
    i = 1
    if payload[0] & 0x80:  # X: extended control bits
        if len(payload) < 2:
            raise ValueError("short VP8 descriptor")
        x = payload[1]
        i = 2
        if x & 0x80:  # I: picture id, 7 or 15 bits
            if len(payload) <= i:
                raise ValueError("short VP8 descriptor")
            i += 2 if payload[i] & 0x80 else 1
        if x & 0x40:  # L: TL0PICIDX
            i += 1
        if x & 0x30:  # T or K: TID/Y/KEYIDX
            i += 1
    if i > len(payload):
        raise ValueError("short VP8 descriptor")
    return payload[i:]


def h264_payload(payload: bytes) -> bytes:
    """The Annex-B bytes of an RTP payload (RFC 6184): NAL units with start codes.

    An FU-A's first fragment gives the start code and the rebuilt NAL header, the
    others their bytes only: joined in sequence order they make the NAL unit.
    """
    if not payload:
        raise ValueError("empty H.264 payload")
    nal = payload[0] & 0x1F
    if 1 <= nal <= 23:  # a single NAL unit
        return START + payload
    if nal == 24:  # STAP-A: (16-bit size, NAL unit)*
        out = []
        i = 1
        while i + 2 <= len(payload):
            size = (payload[i] << 8) | payload[i + 1]
            i += 2
            if size == 0 or i + size > len(payload):
                raise ValueError("bad STAP-A")
            out.append(START + payload[i:i + size])
            i += size
        if not out:
            raise ValueError("empty STAP-A")
        return b"".join(out)
    if nal == 28:  # FU-A
        if len(payload) < 2:
            raise ValueError("short FU-A")
        header = payload[1]
        if header & 0x80:  # S: the first fragment
            return START + bytes([(payload[0] & 0xE0) | (header & 0x1F)]) + payload[2:]
        return payload[2:]
    raise ValueError(f"H.264 packetization not supported: NAL type {nal}")


class Depacketizer:
    """One producer's packets (one SSRC at a time) into `Frame`s, in order."""

    def __init__(self, codec: str, clock_rate: int) -> None:
        self.codec = codec  # "vp8", "h264", "opus"
        self.video = codec in ("vp8", "h264")
        self._hold = VIDEO_HOLD if self.video else AUDIO_HOLD
        self._span = round((VIDEO_SPAN if self.video else AUDIO_SPAN) * clock_rate)
        self._ssrc: int | None = None
        self._next: int | None = None  # the sequence number expected next
        self._held: dict[int, Packet] = {}
        self._red: set[int] = set()  # held audio packets that are RED
        self._parts: list[bytes] = []  # the frame being assembled
        self._part_ts: int | None = None
        self._broken = False  # the frame being assembled lost a packet
        self._waiting = self.video  # a video track starts at a keyframe
        self.need_keyframe = False
        self.lost = 0  # packets given up on
        self.frames_dropped = 0  # frames left out (incomplete, or after a loss until a keyframe)

    def add(self, packet: Packet, red: bool = False) -> list[Frame]:
        """The frames `packet` completes (several when it fills a gap), in order.

        `red`: an audio packet whose payload is RED (its primary block is the frame).
        """
        if packet.ssrc != self._ssrc or self._far_behind(packet.sequence_number):  # a new stream: start again
            self._ssrc = packet.ssrc
            self._next = packet.sequence_number
            self._held.clear()
            self._red.clear()
            self._reset_frame()
            self._waiting = self.video
        seq = packet.sequence_number
        assert self._next is not None
        if (seq - self._next) & 0xFFFF >= 0x8000 or seq in self._held:
            # already passed (or given up on), or a duplicate; the stream's first packet
            # sets where it starts (one older than it is late: a video stream waits for a keyframe anyway)
            return []
        self._held[seq] = packet
        if red:
            self._red.add(seq)
        out: list[Frame] = []
        self._drain(out)
        while self._held and (len(self._held) > self._hold or self._spans_too_long(packet.timestamp)):
            self._skip_gap()
            self._drain(out)
        return out

    def _far_behind(self, seq: int) -> bool:
        # older by more than any late packet can be: the sender's sequence jumped back
        return self._next is not None and RESTART < (self._next - seq) & 0xFFFF <= 0x8000

    def _spans_too_long(self, newest: int) -> bool:
        oldest = min(self._held.values(), key=lambda p: (p.sequence_number - self._next) & 0xFFFF)  # type: ignore[operator]
        return self._span < (newest - oldest.timestamp) & 0xFFFFFFFF < 0x80000000

    def _skip_gap(self) -> None:
        # give up on the missing packets before the oldest held one
        assert self._next is not None
        first = min(self._held, key=lambda s: (s - self._next) & 0xFFFF)  # type: ignore[operator]
        self.lost += (first - self._next) & 0xFFFF
        self._next = first
        if self.video:
            # the picture being assembled lost a packet; the pictures after it lost a reference
            self._broken = self._part_ts is not None
            self._waiting = True
            self.need_keyframe = True

    def _drain(self, out: list[Frame]) -> None:
        while self._next in self._held:
            packet = self._held.pop(self._next)
            self._next = (self._next + 1) & 0xFFFF
            if self.video:
                self._video(packet, out)
            else:
                self._audio(packet, out)

    def _reset_frame(self) -> None:
        self._parts = []
        self._part_ts = None
        self._broken = False

    def _audio(self, packet: Packet, out: list[Frame]) -> None:
        payload = packet.payload
        if packet.sequence_number in self._red:
            self._red.discard(packet.sequence_number)
            block = red.primary(payload)
            if block is None:
                return
            payload = block[1]
        if payload:
            out.append(Frame(payload, packet.timestamp, True))

    def _video(self, packet: Packet, out: list[Frame]) -> None:
        if self._part_ts is not None and packet.timestamp != self._part_ts:
            # a new picture began without the last one's marker packet: that one is incomplete
            self._finish(out, complete=False)
        if self._part_ts is None:
            # in sequence order a picture's first packet starts it, unless a gap took the start
            self._broken = not self._starts_picture(packet.payload)
            self._part_ts = packet.timestamp
        try:
            self._parts.append(vp8_payload(packet.payload) if self.codec == "vp8" else h264_payload(packet.payload))
        except ValueError:
            self._broken = True
        if packet.marker:
            self._finish(out, complete=True)

    def _starts_picture(self, payload: bytes) -> bool:
        if not payload:
            return False
        if self.codec == "vp8":
            return bool(payload[0] & 0x10) and not payload[0] & 0x07  # S bit, partition 0
        nal = payload[0] & 0x1F
        return nal != 28 or (len(payload) > 1 and bool(payload[1] & 0x80))

    def _finish(self, out: list[Frame], complete: bool) -> None:
        data = b"".join(self._parts)
        timestamp = self._part_ts
        broken = self._broken or not complete
        self._reset_frame()
        if timestamp is None or not data:
            return
        if broken:
            self.frames_dropped += 1
            self._waiting = True
            self.need_keyframe = True
            return
        key = is_keyframe(self.codec, data)
        if self._waiting:
            if not key:
                self.frames_dropped += 1
                self.need_keyframe = True
                return
            self._waiting = False
        out.append(Frame(data, timestamp, key))
