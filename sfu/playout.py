"""A floor under a subscriber's video jitter buffer while its publisher's uplink needs repairs.

A browser receiving video with NACK sizes its jitter buffer from the jitter it
sees and, once it has NACKed a few packets, adds its own round-trip time: the
time a retransmission takes to come back.  In a direct call that is the lossy
path's round trip.  Through the SFU a subscriber's round trip is its own leg's:
when the loss is on the publisher's uplink, the SFU repairs it (sfu/ingress.py)
a round trip of *that* leg later, and the subscriber, on a short clean leg,
neither knows nor waits (issue 18: the doctor's jitter buffer 126-174 ms
through the SFU against 189 direct with 5 % loss and 150 ms on the patient's
uplink, and 18-19 hitches over 200 ms a minute against 12 direct).

The playout-delay header extension
(http://www.webrtc.org/experiments/rtp-hdrext/playout-delay: a minimum and a
maximum in 10-ms units, 12 bits each) lets the sender set that floor; Chromium
offers it and its receiver applies the minimum to its video (and, through its
audio/video sync, its audio follows).  `PlayoutFloor` gives the floor from the
publisher leg's own repairs: none while fewer than `MIN_REPAIRS` happened in
the last `WINDOW` (a clean uplink adds no delay), else what `PERCENTILE` of
those repairs took, plus `MARGIN` for the frame to be assembled, at most
`MAX_FLOOR` (a consultation is a conversation).  The maximum sent is
libwebrtc's own default, so it bounds nothing new.

aiortc knows nothing of the extension: `add_playout_delay` adds it to the SDP
answer's video sections and the SFU writes its three bytes itself (sfu/egress.py).
"""

from __future__ import annotations

import re
from collections import deque

from .twcc import answer_sections, sdp_sections

URI = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
# repairs over the last WINDOW seconds decide the floor; fewer than MIN_REPAIRS: no floor (libwebrtc's receiver
# adds its round trip after 3 NACKs)
WINDOW = 10.0
MIN_REPAIRS = 3
# the share of those repairs the floor waits for (the slower rest are repairs that took two rounds or more)
PERCENTILE = 0.8
MARGIN = 0.02
MAX_FLOOR = 0.5
# libwebrtc's default maximum playout delay, sent as the maximum (s)
MAX_DELAY = 10.0
_UNIT = 0.01
_EXTMAP = re.compile(r"^a=extmap:(\d+)(?:/\w+)? (\S+)")


def encode(floor: float) -> bytes:
    """The extension's three bytes for a minimum of `floor` seconds and the default maximum."""
    low = min(0xFFF, max(0, round(floor / _UNIT)))
    value = (low << 12) | round(MAX_DELAY / _UNIT)
    return value.to_bytes(3, "big")


def decode(data: bytes) -> tuple[float, float]:
    """(minimum, maximum) in seconds from the extension's three bytes."""
    value = int.from_bytes(data[:3], "big")
    return (value >> 12) * _UNIT, (value & 0xFFF) * _UNIT


NONE = encode(0.0)


class PlayoutFloor:
    """The floor a publisher's subscribers are sent, from the repairs of its uplink."""

    def __init__(self) -> None:
        self._repairs: deque[tuple[float, float]] = deque()  # (when, how long it took)

    def repaired(self, took: float, now: float) -> None:
        """A packet lost on the uplink came back `took` seconds after it was first NACKed."""
        self._repairs.append((now, took))
        self._forget(now)

    def floor(self, now: float) -> float:
        """Seconds the subscribers' video should wait at least (0: no floor)."""
        self._forget(now)
        if len(self._repairs) < MIN_REPAIRS:
            return 0.0
        took = sorted(t for _, t in self._repairs)
        return min(MAX_FLOOR, took[min(len(took) - 1, int(PERCENTILE * len(took)))] + MARGIN)

    def _forget(self, now: float) -> None:
        repairs = self._repairs
        while repairs and repairs[0][0] < now - WINDOW:
            repairs.popleft()


def add_playout_delay(answer: str, offer: str) -> tuple[str, int | None]:
    """`answer` with the playout-delay extension on every video section whose offer has it, and its id.

    Only with one id across the offer that fits a one-byte header (1-14); else the answer is unchanged.
    """
    offered = sdp_sections(offer)[1]
    ids = {m.group(1) for section in offered if section[0].startswith("m=video")
           for line in section if (m := _EXTMAP.match(line)) and m.group(2) == URI}
    if len(ids) != 1 or not 1 <= int(next(iter(ids))) <= 14:
        return answer, None
    (ext_id,) = ids
    paired = answer_sections(answer, offered)
    if paired is None:
        return answer, None
    head, answered = paired
    out = list(head)
    for section, asked in zip(answered, offered):
        if not section[0].startswith("m=video") or not any(
                (m := _EXTMAP.match(line)) and m.group(2) == URI for line in asked):
            out += section
            continue
        lines = list(section)
        at = max((i for i, line in enumerate(lines) if line.startswith(("a=extmap:", "a=mid:"))), default=0)
        lines.insert(at + 1, f"a=extmap:{ext_id} {URI}")
        out += lines
    eol = "\r\n" if "\r\n" in answer else "\n"
    return eol.join(out) + eol, int(ext_id)
