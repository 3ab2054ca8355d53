"""Loss repair policies of the publisher's leg: when to NACK, when to ask for a keyframe.

Pure decisions over the clock and sequence numbers given to them, so they can
be tested alone and carried over to any forwarding path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# used until the leg has a measured round-trip time
DEFAULT_RTT = 0.1
# seconds within which two send times of one packet are the same copy (a send log's clock against the gate's)
SAME_COPY = 0.002


@dataclass
class _Asked:
    first: float
    last: float
    tries: int


class NackSchedule:
    """Which missing packets to ask for now.

    A packet is asked for as soon as it is seen missing, then again each time
    a retransmission had the time to come back (about one round trip) and did
    not: asking sooner wastes the publisher's uplink on duplicates, never
    asking again leaves a frame broken until the next keyframe.  Each retry
    also waits at least half as long as all the asking before it (0, 20, 40,
    60, 90, 135 ms... when the round trip reads 10 ms): the round-trip time is
    measured from receiver reports, about one a second, and lags behind a
    network that just got slower (issue 18: on a 155 ms path, with an estimate
    still at 6-28 ms, the tries were all spent before the first retransmission
    could come back, and one lost retransmission froze the picture until a
    keyframe).  Waiting as long as all the asking before it (0, W, 2W, 4W) was
    tried and cost a round trip on every third retry of a well-measured path:
    the receiving browser froze when two retransmissions in a row were lost.
    After `max_tries`, or once the packet is older than `max_age`, it is given
    up (a keyframe repairs faster then).  So is a gap of more than `max_burst`
    packets at once: that is an outage, not a loss, and asking for all of it
    would flood the publisher's uplink just as it comes back; `bursts` counts
    them so that the caller asks for a keyframe instead.
    """

    def __init__(self, max_tries: int = 10, max_age: float = 1.0, min_wait: float = 0.02, margin: float = 0.02,
                 max_burst: int = 50) -> None:
        self.max_tries = max_tries
        self.max_burst = max_burst
        self.bursts = 0
        self.max_age = max_age
        self.min_wait = min_wait
        self.margin = margin
        self._asked: dict[int, _Asked] = {}

    def wait(self, rtt: float | None) -> float:
        """Seconds between two NACKs of one packet: one round trip and `margin` for the sender's turn.

        libwebrtc's own receiver asks again after its largest recent round trip, checked every 20 ms;
        asked sooner, its sender refuses to resend a packet it resent less than a round trip ago."""
        return max(self.min_wait, (DEFAULT_RTT if rtt is None else rtt) + self.margin)

    def due(self, missing: Iterable[int], now: float, rtt: float | None) -> list[int]:
        """The packets of `missing` to NACK now; forgets those no longer missing."""
        missing = set(missing)
        for seq in [s for s in self._asked if s not in missing]:
            del self._asked[seq]
        wait = self.wait(rtt)
        new = [seq for seq in missing if seq not in self._asked]
        if len(new) > self.max_burst:
            self.bursts += 1
            for seq in new:  # given up at once
                self._asked[seq] = _Asked(now, now, self.max_tries)
        out = []
        for seq in missing:
            asked = self._asked.get(seq)
            if asked is None:
                self._asked[seq] = _Asked(now, now, 1)
                out.append(seq)
            elif asked.tries < self.max_tries and now - asked.first < self.max_age \
                    and now - asked.last >= max(wait, (asked.last - asked.first) / 2):
                asked.last = now
                asked.tries += 1
                out.append(seq)
        if out:  # oldest first, across the 16-bit wrap
            ref = out[0]
            out.sort(key=lambda s: (s - ref + 0x8000) & 0xFFFF)
        return out

    def next_time(self, rtt: float | None) -> float | None:
        """When the next packet will be due again (None: nothing left to ask)."""
        wait = self.wait(rtt)
        times = [t for a in self._asked.values()
                 if a.tries < self.max_tries and (t := a.last + max(wait, (a.last - a.first) / 2)) - a.first < self.max_age]
        return min(times) if times else None

    def tries(self, seq: int) -> int:
        asked = self._asked.get(seq)
        return asked.tries if asked else 0

    def answered(self, seq: int, now: float) -> tuple[int, float] | None:
        """`seq` came after being asked for: (NACKs sent for it, seconds since the first), forgotten here."""
        asked = self._asked.pop(seq, None)
        return (asked.tries, now - asked.first) if asked is not None else None


class KeyframeRequests:
    """Coalesces the keyframe requests sent to one publisher.

    At most one request goes out per `interval`.  A request that comes during
    the quiet time is not lost: one is sent when the interval ends, unless a
    keyframe came meanwhile (it answers every subscriber waiting).
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._last_sent = float("-inf")
        self._pending = False
        self._requested_at = float("-inf")

    def request(self, now: float) -> bool:
        """A subscriber needs a keyframe; True: send a request now (else one may follow at `pending_at`)."""
        if now - self._last_sent >= self.interval:
            self._last_sent = now
            self._pending = False
            return True
        if not self._pending:
            self._pending = True
            self._requested_at = now
        return False

    @property
    def pending_at(self) -> float | None:
        """When the coalesced request is to be sent (None: none waiting)."""
        return self._last_sent + self.interval if self._pending else None

    def keyframe_arrived(self, now: float) -> None:
        """A keyframe started: it answers what was asked before it."""
        if self._pending and now >= self._requested_at:
            self._pending = False

    def fire(self, now: float) -> bool:
        """The timer set for `pending_at` went off: True if the request is still to be sent."""
        if not self._pending or now < self._last_sent + self.interval:
            return False
        self._pending = False
        self._last_sent = now
        return True


class RetransmitGate:
    """Whether to answer a subscriber's NACK of a packet from the cache.

    Browsers NACK a missing packet again every round trip, and a retransmission
    still on its way looks missing too: answering every NACK sent the same
    packet several times and, on a capped link, retransmissions crowded out
    the media (the queue overflowed, which made more NACKs).  A packet is sent
    again only once its previous retransmission had a round trip to arrive,
    and retransmissions together may take at most `share` of the packets the
    leg carries (a budget refilled by each original packet, `burst` at most):
    on a link too slow for the media, resending more only fills its queue.
    """

    def __init__(self, size: int = 512, min_wait: float = 0.01, share: float = 0.5, burst: int = 30) -> None:
        self._sent: list[tuple[int, float] | None] = [None] * size
        self._min_wait = min_wait
        self._share = share
        self._burst = float(burst)
        self._budget = float(burst)
        self.refused = 0
        self.over_budget = 0

    def original_sent(self) -> None:
        """An original packet went out on the leg: the budget grows by `share`."""
        self._budget = min(self._burst, self._budget + self._share)

    def allow(self, seq: int, now: float, rtt: float | None) -> bool:
        slot = seq % len(self._sent)
        last = self._sent[slot]
        wait = max(self._min_wait, DEFAULT_RTT if rtt is None else rtt)
        if last is not None and last[0] == seq and now - last[1] < wait:
            self.refused += 1
            return False
        return self._spend(slot, seq, now)

    def lost(self, seq: int, sent: float, now: float) -> bool:
        """Whether to resend `seq` now that the copy of it sent at `sent` is known lost (the subscriber's
        transport-wide feedback says so): yes, unless a later copy is on its way, within the budget."""
        slot = seq % len(self._sent)
        last = self._sent[slot]
        if last is not None and last[0] == seq and last[1] > sent + SAME_COPY:
            return False
        return self._spend(slot, seq, now)

    def _spend(self, slot: int, seq: int, now: float) -> bool:
        # one retransmission from the budget, remembered in its slot; none when the budget is spent
        if self._budget < 1:
            self.over_budget += 1
            return False
        self._budget -= 1
        self._sent[slot] = (seq, now)
        return True


class UnansweredNacks:
    """When a subscriber's NACKs cannot be answered, ask for a keyframe instead.

    A NACK goes unanswered when its packet has left the history or the leg's
    retransmission budget is spent (`RetransmitGate`).  A browser then waits
    for that packet until it gives up (libwebrtc: ten tries, then a keyframe
    request after ~3 s without a decodable frame) and the picture stands still.
    Measured on a 300 kbit/s link (issue 18): the first seconds' overflow left
    ~120 packets missing, the budget answered a few per second, and the patient
    decoded 3-13 frames in 5 s.  `threshold` unanswered NACKs within `window`
    seconds ask for one keyframe; after that, `hold` seconds for it to arrive.
    """

    def __init__(self, threshold: int = 10, window: float = 1.0, hold: float = 2.0) -> None:
        self._threshold = threshold
        self._window = window
        self._hold = hold
        self._count = 0
        self._since = float("-inf")
        self._asked_at = float("-inf")
        self.keyframes = 0

    def unanswered(self, now: float) -> bool:
        """One NACK went unanswered at `now`; True: ask the publisher for a keyframe now."""
        if now - self._asked_at < self._hold:
            return False
        if now - self._since > self._window:
            self._since, self._count = now, 0
        self._count += 1
        if self._count < self._threshold:
            return False
        self._asked_at, self._count = now, 0
        self.keyframes += 1
        return True


def nack_items(lost: Iterable[int]) -> bytes:
    """RFC 4585 generic NACK items (16-bit PID, 16-bit bitmask of the 16 packets after it) for `lost`:
    in any order, repeated or not, across the 16-bit wrap (in serial order from the first one given).

    aiortc's packer takes a list ascending by value: a list across the wrap, or a repeat
    list made of two (the second older than the end of the first), gave it a negative shift
    and the NACK was never sent (issue 18, 2026-12-06: `ValueError` in the loss scenario).
    """
    seqs = list(dict.fromkeys(s & 0xFFFF for s in lost))
    if not seqs:
        return b""
    ref = seqs[0]
    seqs.sort(key=lambda s: (s - ref + 0x8000) & 0xFFFF)
    out = bytearray()
    pid, mask = seqs[0], 0
    for seq in seqs[1:]:
        d = (seq - pid) & 0xFFFF
        if d <= 16:
            mask |= 1 << (d - 1)
        else:
            out += pid.to_bytes(2, "big") + mask.to_bytes(2, "big")
            pid, mask = seq, 0
    out += pid.to_bytes(2, "big") + mask.to_bytes(2, "big")
    return bytes(out)
