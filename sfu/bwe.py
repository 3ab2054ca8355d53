"""Send-side bandwidth estimation of one subscriber's downlink, from its transport-wide feedback.

With transport-wide congestion control negotiated (sfu/twcc.py), the SFU
numbers every packet it sends a subscriber and the subscriber's browser
reports when each arrived.  This module turns those reports into the leg's
delay-based estimate, the way libwebrtc's GoogCC does on a browser's own
sender (a direct call): packets are grouped by send time (bursts that arrive
together count as one group), the one-way delay variation between groups is
accumulated, smoothed and fitted over the last 20 groups (the trendline);
a slope over an adaptive threshold is overuse (the queue grows), under its
negative is underuse (it drains); an AIMD controller then holds, grows the
estimate (8 % a second, or a packet per response time near the link's
known capacity; never above 1.5x what was acknowledged) or cuts it to 0.85x
of what was acknowledged.

Why not the subscriber's REMB: Chromium's receive-side estimator reads
arrival jitter as congestion (issue 18: with 80 ms of jitter on the patient's
downlink its REMB fell to 25-70 kbit/s without any loss, and the doctor's
camera was held at 125 kbit/s where a direct call kept 2.7 Mbit/s).  The
trendline's burst grouping and adaptive threshold ride that out, as in a
direct call.  Loss is handled beside this, from receiver reports
(`sfu/egress.py LossCeiling`).

No probing: the estimate starts at `START_BITRATE` and the publisher, which
runs its own estimator with probing on its uplink, follows it.
"""

from __future__ import annotations

import array
from collections import deque
from collections.abc import Iterable

# libwebrtc's constants (modules/congestion_controller/goog_cc)
BURST_DELTA = 0.005  # s: packets sent within this of a group's first belong to it
MAX_BURST = 0.1  # s: the longest a burst of arrivals may last
WINDOW = 20  # groups the trendline is fitted over
SMOOTHING = 0.9
THRESHOLD_GAIN = 4.0
MIN_DELTAS = 60
OVERUSE_TIME = 0.010  # s the trend must stay over the threshold
K_UP, K_DOWN = 0.0087, 0.039
BETA = 0.85
# what a leg is assumed to carry before any feedback (libwebrtc starts at 300 kbit/s and probes
# to 3x and 6x at once; the SFU does not probe, so it starts where those probes usually land)
START_BITRATE = 1_000_000
MIN_BITRATE = 30_000
# packets whose send time and size are kept until their feedback comes (a second of 4 Mbit/s)
LOG_SIZE = 4096
ACK_WINDOW = 0.5  # s of acknowledged packets the throughput is measured over
# A link that loses more than `COLLAPSE_LOSS` of what was sent, over at least `COLLAPSE_PACKETS` reported
# in the last `ACK_WINDOW`, has less room than the estimate says, whatever the delay shows.  At a step
# (1.5 Mbit/s meeting a 300 kbit/s cap behind a 200 ms queue) overuse shows while the last 0.5 s of
# acknowledgements still hold the old rate, and once the queue is full its delay stops growing: the
# first cut was the only one the delay gave (issue 18: the estimate went to 1.29 Mbit/s and stayed there
# for seconds while the queue dropped half the packets).  So the estimate is cut to what got through in
# the last `CUT_WINDOW` (libwebrtc's acknowledged-rate windows are 150 ms too), by at most a factor of
# `COLLAPSE_STEP` a round trip (a burst of loss inside the short window must not take a fast leg to
# nothing: the SFU does not probe, and an estimate grows back by 8 % a second).  Random loss is far below it.
COLLAPSE_LOSS = 0.25
COLLAPSE_STEP = 4
CUT_WINDOW = 0.15
COLLAPSE_PACKETS = 30
# below this share of the estimate acknowledged, the leg is application-limited: not a measure of the link
APP_LIMITED = 0.5

NORMAL, OVERUSING, UNDERUSING = "normal", "overusing", "underusing"
# a send log entry of no stream (padding, or a caller that does not say)
NO_STREAM = -1


class SendLog:
    """Send time and size of the last `LOG_SIZE` transport-wide sequence numbers (no object per packet),
    and which stream's packet each one carried: a stream's index (`NO_STREAM`: none said) and the packet's
    RTP sequence number, the original's for a retransmission."""

    def __init__(self) -> None:
        self._seq = array.array("i", [-1]) * LOG_SIZE
        self._time = array.array("d", [0.0]) * LOG_SIZE
        self._size = array.array("H", [0]) * LOG_SIZE
        self._stream = array.array("h", [NO_STREAM]) * LOG_SIZE
        self._rtp = array.array("H", [0]) * LOG_SIZE
        self._next = 0

    def next(self, now: float, size: int, stream: int = NO_STREAM, rtp: int = 0) -> int:
        """The transport-wide sequence number of a packet of `size` bytes sent at `now`: RTP packet `rtp`
        of stream `stream`."""
        seq = self._next
        self._next = (seq + 1) & 0xFFFF
        i = seq % LOG_SIZE
        self._seq[i] = seq
        self._time[i] = now
        self._size[i] = min(size, 0xFFFF)
        self._stream[i] = stream
        self._rtp[i] = rtp
        return seq

    def get(self, seq: int) -> tuple[float, int] | None:
        """(send time, size) of `seq`, if still kept."""
        i = seq % LOG_SIZE
        if self._seq[i] != seq:
            return None
        return self._time[i], self._size[i]

    def carried(self, seq: int) -> tuple[int, int, float] | None:
        """(stream, RTP sequence number, send time) of `seq`, if still kept and of a stream."""
        i = seq % LOG_SIZE
        if self._seq[i] != seq or self._stream[i] == NO_STREAM:
            return None
        return self._stream[i], self._rtp[i], self._time[i]


class _Group:
    __slots__ = ("first_send", "send", "first_arrival", "arrival", "size")

    def __init__(self, send: float, arrival: float, size: int) -> None:
        self.first_send = send
        self.send = send
        self.first_arrival = arrival
        self.arrival = arrival
        self.size = size


class InterArrival:
    """Groups packets by send time and gives (send delta, arrival delta) between consecutive groups."""

    def __init__(self) -> None:
        self._current: _Group | None = None
        self._previous: _Group | None = None
        self._reordered = 0

    def packet(self, send: float, arrival: float, size: int) -> tuple[float, float] | None:
        cur = self._current
        if cur is None:
            self._current = _Group(send, arrival, size)
            return None
        if send < cur.first_send:
            return None  # sent before the group being built: out of order, ignored
        deltas = None
        if not self._in_group(cur, send, arrival):
            prev = self._previous
            if prev is not None:
                send_delta = cur.send - prev.send
                arrival_delta = cur.arrival - prev.arrival
                if arrival_delta - send_delta >= 3.0 or arrival_delta < 0:
                    # the receiver's clock jumped, or groups arrived reordered
                    self._reordered += 1
                    if arrival_delta - send_delta >= 3.0 or self._reordered >= 3:
                        self._previous = None
                        self._current = _Group(send, arrival, size)
                        self._reordered = 0
                        return None
                else:
                    self._reordered = 0
                    deltas = (send_delta, arrival_delta)
            self._previous = cur
            self._current = _Group(send, arrival, size)
            return deltas
        cur.send = max(cur.send, send)
        cur.arrival = max(cur.arrival, arrival)
        cur.size += size
        return None

    @staticmethod
    def _in_group(group: _Group, send: float, arrival: float) -> bool:
        if send - group.first_send <= BURST_DELTA:
            return True
        # a burst: arrived right after the group, faster than it was sent (it waited in a queue behind it)
        arrival_delta = arrival - group.arrival
        send_delta = send - group.send
        return (send_delta == 0 or arrival_delta - send_delta < 0) and arrival_delta <= BURST_DELTA \
            and arrival - group.first_arrival < MAX_BURST


class Trendline:
    """libwebrtc's trendline filter and overuse detector, times in seconds (its thresholds are in ms)."""

    def __init__(self) -> None:
        self._deltas = 0
        self._first_arrival: float | None = None
        self._accumulated = 0.0
        self._smoothed = 0.0
        self._history: deque[tuple[float, float]] = deque(maxlen=WINDOW)
        self._prev_trend = 0.0
        self.threshold = 12.5
        self._last_update: float | None = None
        self._over_time: float | None = None
        self._over_count = 0
        self.state = NORMAL
        self.modified_trend = 0.0

    def update(self, send_delta: float, arrival_delta: float, arrival: float) -> str:
        delta_ms = 1000 * (arrival_delta - send_delta)
        self._deltas = min(self._deltas + 1, 1000)
        if self._first_arrival is None:
            self._first_arrival = arrival
        self._accumulated += delta_ms
        self._smoothed = SMOOTHING * self._smoothed + (1 - SMOOTHING) * self._accumulated
        self._history.append((1000 * (arrival - self._first_arrival), self._smoothed))
        trend = self._prev_trend
        if len(self._history) == WINDOW:
            slope = _slope(self._history)
            if slope is not None:
                trend = slope
        self._detect(trend, 1000 * send_delta, 1000 * arrival)
        return self.state

    def _detect(self, trend: float, send_delta_ms: float, now_ms: float) -> None:
        if self._deltas < 2:
            self.state = NORMAL
            return
        modified = min(self._deltas, MIN_DELTAS) * trend * THRESHOLD_GAIN
        self.modified_trend = modified
        if modified > self.threshold:
            self._over_time = send_delta_ms / 2 if self._over_time is None else self._over_time + send_delta_ms
            self._over_count += 1
            if self._over_time > 1000 * OVERUSE_TIME and self._over_count > 1 and trend >= self._prev_trend:
                self._over_time = 0.0
                self._over_count = 0
                self.state = OVERUSING
        elif modified < -self.threshold:
            self._over_time = None
            self._over_count = 0
            self.state = UNDERUSING
        else:
            self._over_time = None
            self._over_count = 0
            self.state = NORMAL
        self._prev_trend = trend
        self._adapt(modified, now_ms)

    def _adapt(self, modified: float, now_ms: float) -> None:
        if self._last_update is None:
            self._last_update = now_ms
        if abs(modified) > self.threshold + 15:  # a spike: not what the threshold follows
            self._last_update = now_ms
            return
        k = K_DOWN if abs(modified) < self.threshold else K_UP
        elapsed = min(now_ms - self._last_update, 100.0)
        self.threshold = min(600.0, max(6.0, self.threshold + k * (abs(modified) - self.threshold) * elapsed))
        self._last_update = now_ms


def _slope(points: Iterable[tuple[float, float]]) -> float | None:
    pts = list(points)
    n = len(pts)
    x_avg = sum(x for x, _ in pts) / n
    y_avg = sum(y for _, y in pts) / n
    num = sum((x - x_avg) * (y - y_avg) for x, y in pts)
    den = sum((x - x_avg) ** 2 for x, _ in pts)
    return num / den if den else None


class Throughput:
    """What the subscriber acknowledged receiving, over the last `ACK_WINDOW` of arrivals (bit/s)."""

    def __init__(self) -> None:
        self._acked: deque[tuple[float, int]] = deque()
        self._bytes = 0

    def add(self, arrival: float, size: int) -> None:
        self._acked.append((arrival, size))
        self._bytes += size

    def rate(self) -> int | None:
        acked = self._acked
        if not acked:
            return None
        newest = max(acked[-1][0], acked[0][0])
        while acked and acked[0][0] < newest - ACK_WINDOW:
            self._bytes -= acked.popleft()[1]
        if len(acked) < 2:
            return None
        return int(8 * self._bytes / max(newest - acked[0][0], 0.1))

    def recent(self, window: float = CUT_WINDOW) -> int | None:
        """The same over the last `window` s of arrivals (None: fewer than two packets in it)."""
        acked = self._acked
        if not acked:
            return None
        newest, total, count, first = acked[-1][0], 0, 0, acked[-1][0]
        for arrival, size in reversed(acked):
            if arrival < newest - window:
                break
            total, count, first = total + size, count + 1, arrival
        if count < 2:
            return None
        return int(8 * total / max(newest - first, window / 2))


class RateControl:
    """libwebrtc's AIMD rate control: what the leg may carry, from the detector's state and the throughput."""

    def __init__(self, start: int = START_BITRATE, floor: int = MIN_BITRATE) -> None:
        self.bitrate = start
        self._floor = floor
        self._state = "hold"
        self._last_change: float | None = None
        self._last_decrease: float | None = None
        self._capacity = LinkCapacity()

    def cut(self, bitrate: int, now: float) -> None:
        """The link carries less than the estimate, by other evidence than delay: down to `bitrate`."""
        if bitrate < self.bitrate:
            self.bitrate = max(self._floor, bitrate)
            self._last_decrease = self._last_change = now
            self._state = "hold"

    def update(self, detector: str, throughput: int | None, now: float, rtt: float) -> int:
        if detector == OVERUSING:
            self._state = "decrease"
        elif detector == UNDERUSING:
            self._state = "hold"
        elif self._state == "hold":
            self._state = "increase"
        elapsed = 0.0 if self._last_change is None else min(max(now - self._last_change, 0.0), 1.0)
        capacity = self._capacity
        if self._state == "increase":
            if throughput is not None and throughput > capacity.upper():
                capacity.reset()  # the link got faster than measured: grow multiplicatively again
            limit = float("inf") if throughput is None else 1.5 * throughput + 10_000
            if self.bitrate < limit:
                if capacity.kbps is not None:  # near the known capacity: about a packet per response time
                    frame = self.bitrate / 30
                    packet = frame / max(1.0, -(-frame // (1200 * 8)))
                    step = max(4000.0, packet / (rtt + 0.1)) * elapsed
                else:
                    step = max(self.bitrate * (1.08 ** elapsed - 1), 1000.0)
                self.bitrate = int(min(self.bitrate + step, limit))
            self._last_change = now
        elif self._state == "decrease" and throughput is not None:
            interval = min(max(rtt, 0.010), 0.200)
            if self._last_decrease is None or now - self._last_decrease >= interval:
                if throughput >= APP_LIMITED * self.bitrate:
                    # the leg was carrying about what it may: the link is full at the throughput
                    target = BETA * throughput
                    if target > self.bitrate and capacity.kbps is not None:
                        target = BETA * capacity.kbps * 1000
                    if throughput < capacity.lower():
                        capacity.reset()
                    capacity.overuse(throughput)
                else:
                    # the publisher sent far less than the leg may carry (its encoder ramps up, the
                    # picture is still): the throughput says nothing of the link.  libwebrtc cuts to
                    # it all the same and its probes win the rate back within a second; the SFU does
                    # not probe, so it cuts by BETA a round trip while the overuse lasts instead (a
                    # delay step on a call just started took a 1 Mbit/s estimate to 108 kbit/s, and it
                    # took 10 s to climb back to 250 kbit/s)
                    target = BETA * self.bitrate
                if target < self.bitrate:
                    self.bitrate = int(target)
                self._last_decrease = self._last_change = now
                self._state = "hold"
        else:
            self._last_change = now
        self.bitrate = max(self._floor, self.bitrate)
        return self.bitrate


class LinkCapacity:
    """The throughput measured when overuse was detected: an average and its normalised variance (kbit/s)."""

    def __init__(self) -> None:
        self.kbps: float | None = None
        self._var = 0.4

    def _deviation(self) -> float:
        return float((self._var * (self.kbps or 0.0)) ** 0.5)

    def upper(self) -> float:
        return float("inf") if self.kbps is None else 1000 * (self.kbps + 3 * self._deviation())

    def lower(self) -> float:
        return 0.0 if self.kbps is None else 1000 * max(0.0, self.kbps - 3 * self._deviation())

    def reset(self) -> None:
        self.kbps = None

    def overuse(self, throughput: int) -> None:
        sample = throughput / 1000
        if self.kbps is None:
            self.kbps = sample
            return
        self.kbps = 0.95 * self.kbps + 0.05 * sample
        norm = max(self.kbps, 1.0)
        self._var = min(2.5, max(0.4, 0.95 * self._var + 0.05 * (self.kbps - sample) ** 2 / norm))


class SendSideEstimator:
    """One subscriber leg's downlink estimate from its transport-wide feedback."""

    def __init__(self, start: int = START_BITRATE) -> None:
        self.log = SendLog()
        self._arrivals = InterArrival()
        self._trend = Trendline()
        self._throughput = Throughput()
        self._control = RateControl(start)
        self.estimate = start
        self.feedbacks = 0
        self.received = 0
        self.lost = 0
        self.collapses = 0  # cuts for a collapsed link (`COLLAPSE_LOSS`)
        self._reported: deque[tuple[float, int, int]] = deque()  # (when, received, lost) per feedback
        self._collapse_at = float("-inf")

    @property
    def state(self) -> str:
        return self._trend.state

    def feedback(self, packets: Iterable[tuple[int, float | None]], now: float, rtt: float | None) -> int:
        """A feedback's packets, (transport-wide sequence number, arrival time in the receiver's clock or
        None if not received); returns the new estimate (bit/s)."""
        self.feedbacks += 1
        arrived: list[tuple[float, float, int]] = []
        lost = 0
        for seq, arrival in packets:
            sent = self.log.get(seq)
            if sent is None:
                continue  # not ours, or older than the log
            if arrival is None:
                lost += 1
                continue
            self.received += 1
            arrived.append((arrival, sent[0], sent[1]))
        self.lost += lost
        arrived.sort()
        state = self._trend.state
        for arrival, send, size in arrived:
            self._throughput.add(arrival, size)
            deltas = self._arrivals.packet(send, arrival, size)
            if deltas is not None:
                state = self._trend.update(deltas[0], deltas[1], arrival)
        if arrived:
            self.estimate = self._control.update(state, self._throughput.rate(), now, rtt or 0.1)
        self._collapse(now, len(arrived), lost, rtt or 0.1)
        return self.estimate

    def _collapse(self, now: float, received: int, lost: int, rtt: float) -> None:
        reported = self._reported
        reported.append((now, received, lost))
        while reported[0][0] < now - ACK_WINDOW:
            reported.popleft()
        if not lost or now - self._collapse_at < rtt + 0.1:  # a cut shows in the feedback a round trip later
            return
        got = sum(r for _, r, _ in reported)
        missing = sum(m for _, _, m in reported)
        if got + missing < COLLAPSE_PACKETS or missing <= COLLAPSE_LOSS * (got + missing):
            return
        through = self._throughput.recent()
        if through is None or BETA * through >= self.estimate:
            return
        self._control.cut(int(max(BETA * through, self.estimate / COLLAPSE_STEP)), now)
        self.estimate = self._control.bitrate
        self._collapse_at = now
        self.collapses += 1
