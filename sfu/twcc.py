"""Transport-wide congestion control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01).

A browser that negotiated transport-cc numbers every packet it sends on a
transport with one sequence (a header extension) and expects its peer to say
when each arrived: an RTCP transport feedback (RTPFB, FMT 15) every 50-250 ms.
It runs its congestion control on those reports, with probing, as in a direct
call.  The SFU is that peer for each publisher (`FeedbackRecorder`: what the
SFU received, sent back) and the sender for each subscriber (`parse_feedback`:
what the subscriber received, read by `sfu/bwe.py`).

aiortc knows nothing of it: `add_transport_cc` adds it to the SDP answer, and
the SFU's own fast path reads and writes the extension in RTP bytes.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

URI = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
RTPFB = 205
FMT = 15
# receive deltas and reference time units (s)
DELTA_UNIT = 0.00025
REFERENCE_UNIT = 0.064
# the most sequence numbers one feedback describes, and the most bytes it takes
MAX_STATUSES = 2048
MAX_BYTES = 1200
# the most arrivals kept between two feedbacks (a flood of numbers cannot grow memory further)
MAX_PENDING = 8192

NOT_RECEIVED, SMALL, LARGE = 0, 1, 2
_HEAD = struct.Struct("!BBHII")
_FB = struct.Struct("!HHI")  # base sequence, status count, reference time (24 bits) + feedback count
_U16 = struct.Struct("!H")
_I16 = struct.Struct("!h")


@dataclass
class TransportFeedback:
    sender_ssrc: int
    media_ssrc: int
    base_sequence: int
    reference: float  # s, in the receiver's clock
    count: int  # feedback packet count (8 bits)
    packets: list[tuple[int, float | None]]  # (16-bit sequence number, arrival in the receiver's clock, s)


class FeedbackRecorder:
    """What arrived with a transport-wide sequence number, until reported in a feedback."""

    def __init__(self) -> None:
        self._arrivals: dict[int, float] = {}  # unwrapped sequence number -> arrival (s)
        self._last: int | None = None  # the newest unwrapped sequence number seen
        self._next: int | None = None  # the first unwrapped sequence number not yet reported
        self._count = 0
        self.recorded = 0
        self.feedbacks = 0

    def record(self, seq: int, arrival: float) -> None:
        """Packet `seq` (16 bits) arrived at `arrival` (s)."""
        last = self._last
        if last is None:
            unwrapped = seq
        else:
            diff = (seq - last) & 0xFFFF
            unwrapped = last + (diff - 0x10000 if diff >= 0x8000 else diff)
        if self._next is None:
            self._next = unwrapped
        elif unwrapped < self._next:
            return  # reported as lost already: too late (the sender has moved on)
        if last is None or unwrapped > last:
            self._last = unwrapped
        self.recorded += 1
        arrivals = self._arrivals
        if unwrapped not in arrivals:
            arrivals[unwrapped] = arrival
            if len(arrivals) > MAX_PENDING:  # nobody asked for feedback for too long: forget the oldest
                first = self._next
                while first not in arrivals:
                    first += 1
                del arrivals[first]
                self._next = first + 1

    @property
    def pending(self) -> bool:
        return bool(self._arrivals)

    def build(self, sender_ssrc: int, media_ssrc: int) -> list[bytes]:
        """Feedback packets for everything from the first unreported sequence number to the newest."""
        out: list[bytes] = []
        arrivals = self._arrivals
        while arrivals and self._next is not None and self._last is not None:
            packet, self._next = self._one(sender_ssrc, media_ssrc, self._next, self._last)
            out.append(packet)
            for seq in [s for s in arrivals if s < self._next]:
                del arrivals[seq]
        self.feedbacks += len(out)
        return out

    def _one(self, sender_ssrc: int, media_ssrc: int, first: int, last: int) -> tuple[bytes, int]:
        # the first sequence number must have arrived for a reference time: skip lost ones before it
        arrivals = self._arrivals
        while first not in arrivals:
            first += 1
        reference = int(arrivals[first] / REFERENCE_UNIT)
        previous = reference * 256  # in 250 µs ticks
        statuses: list[int] = []
        deltas = bytearray()
        seq = first
        while seq <= last and len(statuses) < MAX_STATUSES:
            arrival = arrivals.get(seq)
            if arrival is None:
                status, encoded = NOT_RECEIVED, b""
            else:
                tick = round(arrival / DELTA_UNIT)
                delta = tick - previous
                if 0 <= delta <= 255:
                    status, encoded = SMALL, bytes((delta,))
                elif -0x8000 <= delta <= 0x7FFF:
                    status, encoded = LARGE, _I16.pack(delta)
                else:
                    break  # cannot be said relative to this packet's reference: the next packet will
                previous = tick
            # chunks take at most 2 bytes per 7 statuses; stop before the packet outgrows MAX_BYTES
            if 20 + 2 * (len(statuses) // 7 + 2) + len(deltas) + len(encoded) > MAX_BYTES:
                break
            statuses.append(status)
            deltas += encoded
            seq += 1
        while statuses and statuses[-1] == NOT_RECEIVED:  # never end on a loss: it may still arrive
            statuses.pop()
            seq -= 1
        chunks = _chunks(statuses)
        body = _FB.pack(first & 0xFFFF, len(statuses), ((reference & 0xFFFFFF) << 8) | (self._count & 0xFF))
        self._count += 1
        payload = body + chunks + bytes(deltas)
        padding = -len(payload) % 4
        if padding:
            payload += bytes(padding - 1) + bytes((padding,))
        length = (12 + len(payload)) // 4 - 1
        head = _HEAD.pack(0x80 | (0x20 if padding else 0) | FMT, RTPFB, length, sender_ssrc, media_ssrc)
        return head + payload, seq


def _chunks(statuses: list[int]) -> bytes:
    # run-length chunks for runs of 7 or more, two-bit status vectors (7 symbols) otherwise
    out = bytearray()
    i, n = 0, len(statuses)
    while i < n:
        run = 1
        while i + run < n and statuses[i + run] == statuses[i] and run < 0x1FFF:
            run += 1
        if run >= 7:
            out += _U16.pack((statuses[i] << 13) | run)
            i += run
            continue
        word = 0xC000
        for k in range(7):
            symbol = statuses[i + k] if i + k < n else NOT_RECEIVED
            word |= symbol << (12 - 2 * k)
        out += _U16.pack(word)
        i += 7
    return bytes(out)


def parse_feedback(packet: bytes) -> TransportFeedback:
    """One RTPFB FMT 15 packet, header included; ValueError if it is not one or is malformed."""
    if len(packet) < 20:
        raise ValueError(f"transport feedback too short: {len(packet)} bytes")
    b0, pt, length, sender_ssrc, media_ssrc = _HEAD.unpack_from(packet)
    if b0 >> 6 != 2 or pt != RTPFB or b0 & 0x1F != FMT:
        raise ValueError("not a transport feedback packet")
    end = 4 * (length + 1)
    if end > len(packet):
        raise ValueError(f"transport feedback says {end} bytes, has {len(packet)}")
    if b0 & 0x20:
        pad = packet[end - 1]
        if pad == 0 or pad > end - 20:
            raise ValueError("transport feedback with a bad padding count")
        end -= pad
    base, count, word = _FB.unpack_from(packet, 12)
    reference_ticks = word >> 8
    statuses: list[int] = []
    at = 20
    while len(statuses) < count:
        if at + 2 > end:
            raise ValueError(f"transport feedback's chunks stop at {len(statuses)} of {count} statuses")
        chunk = _U16.unpack_from(packet, at)[0]
        at += 2
        if chunk & 0x8000 == 0:  # run length
            run = chunk & 0x1FFF
            if run == 0:
                raise ValueError("transport feedback with an empty run")
            statuses += [(chunk >> 13) & 0x3] * min(run, count - len(statuses))
        elif chunk & 0x4000:  # 7 two-bit symbols
            statuses += [(chunk >> (12 - 2 * k)) & 0x3 for k in range(7)][:count - len(statuses)]
        else:  # 14 one-bit symbols
            statuses += [(chunk >> (13 - k)) & 0x1 for k in range(14)][:count - len(statuses)]
    tick = reference_ticks * 256
    packets: list[tuple[int, float | None]] = []
    for i, status in enumerate(statuses):
        seq = (base + i) & 0xFFFF
        if status == NOT_RECEIVED:
            packets.append((seq, None))
            continue
        if status == SMALL:
            if at + 1 > end:
                raise ValueError("transport feedback's receive deltas are cut short")
            tick += packet[at]
            at += 1
        elif status == LARGE:
            if at + 2 > end:
                raise ValueError("transport feedback's receive deltas are cut short")
            tick += _I16.unpack_from(packet, at)[0]
            at += 2
        else:
            raise ValueError("transport feedback with a reserved status symbol")
        packets.append((seq, tick * DELTA_UNIT))
    return TransportFeedback(sender_ssrc, media_ssrc, base, reference_ticks * REFERENCE_UNIT, word & 0xFF, packets)


def feedback_packets(compound: bytes) -> list[bytes]:
    """The transport feedback packets inside a plain compound RTCP datagram (garbage ends the walk)."""
    out = []
    at, size = 0, len(compound)
    while at + 4 <= size:
        b0, pt, length = compound[at], compound[at + 1], _U16.unpack_from(compound, at + 2)[0]
        end = at + 4 * (length + 1)
        if b0 >> 6 != 2 or end > size:
            break
        if pt == RTPFB and b0 & 0x1F == FMT:
            out.append(compound[at:end])
        at = end
    return out


_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")
_RTCP_FB = re.compile(r"^a=rtcp-fb:(\d+) transport-cc\s*$")
_RTPMAP = re.compile(r"^a=rtpmap:(\d+) ")


def add_transport_cc(answer: str, offer: str) -> tuple[str, int | None]:
    """`answer` with transport-cc on every media section whose offer has it, and the extension's id.

    The offer's id is kept (one id space with BUNDLE); if the offer gives
    different ids on different sections, or none, the answer is unchanged.
    """
    offered = sdp_sections(offer)[1]
    ids = set()
    feedback: list[set[str]] = []
    for section in offered:
        ext = {m.group(1) for line in section if (m := _EXTMAP.match(line)) and m.group(2) == URI}
        ids |= ext
        feedback.append({m.group(1) for line in section if (m := _RTCP_FB.match(line))} if ext else set())
    if len(ids) != 1:
        return answer, None
    (ext_id,) = ids
    paired = answer_sections(answer, offered)
    if paired is None:
        return answer, None
    head, answered = paired
    out = list(head)
    for section, types in zip(answered, feedback):
        if not types:
            out += section
            continue
        lines = list(section)
        at = max((i for i, line in enumerate(lines) if line.startswith(("a=extmap:", "a=mid:"))), default=0)
        lines.insert(at + 1, f"a=extmap:{ext_id} {URI}")
        i = 0
        while i < len(lines):
            m = _RTPMAP.match(lines[i])
            if m and m.group(1) in types:
                j = i + 1
                while j < len(lines) and lines[j].startswith((f"a=rtcp-fb:{m.group(1)} ", f"a=fmtp:{m.group(1)} ")):
                    j += 1
                lines.insert(j, f"a=rtcp-fb:{m.group(1)} transport-cc")
                i = j
            i += 1
        out += lines
    eol = "\r\n" if "\r\n" in answer else "\n"
    return eol.join(out) + eol, int(ext_id)


def answer_sections(answer: str, offered: list[list[str]]) -> tuple[list[str], list[list[str]]] | None:
    """The answer's session lines and media sections, if it has as many sections as the offer (else None)."""
    head, answered = sdp_sections(answer)
    return (head, answered) if len(answered) == len(offered) else None


def sdp_sections(sdp: str) -> tuple[list[str], list[list[str]]]:
    """The session-level lines of `sdp`, and each media section's lines (its m= line first)."""
    head: list[str] = []
    sections: list[list[str]] = []
    for line in sdp.splitlines():
        if not line:
            continue
        if line.startswith("m="):
            sections.append([line])
        elif sections:
            sections[-1].append(line)
        else:
            head.append(line)
    return head, sections
