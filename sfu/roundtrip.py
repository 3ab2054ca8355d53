"""A leg's round-trip time, from the subscriber's receiver reports (RFC 3550 6.4.1).

Every report block names the last sender report it heard of (LSR, the middle
32 bits of its NTP time) and how long ago (DLSR): the time since we sent that
report, less DLSR, is one round trip.  aiortc keeps one estimate per sender,
smoothed with a weight of 0.85 on the past, and takes a sample only when the
block names the sender's very newest report.  Measured on a leg whose delay
went from 1 to 155 ms (issue 18, the 5 % loss scenario): one minute later the
SFU still used 115 ms, the smallest of the leg's senders' estimates, and its
NACKs towards the publisher went out before the retransmission could come
back.  Here every sender of the leg feeds one estimate, any block naming one
of our recent reports is a sample, and the value is the highest sample of the
last `window` seconds (libwebrtc's NACK timing also takes the largest round
trip of a short window): a slower network is believed at the next report, a
faster one once the window has passed.
"""

from __future__ import annotations

from collections import OrderedDict, deque

# a sample beyond this is a report naming an SR we mistook for another: not a round trip
MAX_RTT = 10.0


class RoundTrip:
    """The round-trip time of one leg (s), None until a receiver report gave a sample."""

    def __init__(self, window: float = 1.5, keep: int = 32) -> None:
        self.window = window
        self._keep = keep
        self._sent: OrderedDict[int, float | None] = OrderedDict()  # LSR -> when sent (None: ambiguous)
        self._samples: deque[tuple[float, float]] = deque()
        self.latest: float | None = None
        self.value: float | None = None

    def sender_report(self, ntp: int, at: float) -> None:
        """A sender report carrying NTP time `ntp` (64-bit) went out at `at` (monotonic seconds)."""
        lsr = (ntp >> 16) & 0xFFFFFFFF
        if lsr in self._sent:  # two reports with one NTP time (an idle sender): a block can't say which
            self._sent[lsr] = None
            return
        self._sent[lsr] = at
        while len(self._sent) > self._keep:
            self._sent.popitem(last=False)

    def receiver_report(self, lsr: int, dlsr: int, at: float) -> float | None:
        """A report block with LSR `lsr` and DLSR `dlsr` (1/65536 s) came at `at`; returns its sample."""
        if not lsr:
            return None  # the subscriber has heard no sender report yet
        sent = self._sent.get(lsr)
        if sent is None:
            return None
        rtt = at - sent - dlsr / 65536
        if not -0.005 <= rtt <= MAX_RTT:  # a little under 0: the clocks' grain on a loopback leg
            return None
        rtt = max(rtt, 0.0)
        samples = self._samples
        samples.append((at, rtt))
        while samples[0][0] < at - self.window:
            samples.popleft()
        self.latest = rtt
        self.value = max(r for _, r in samples)
        return rtt
