"""A user-space network impairment relay (this kernel has no netem), for tests and benchmarks.

`UdpRelay` sits between a client (a browser) and a server (the SFU, or the
other browser): the client talks to `client_facing`, the server to
`server_facing`, and each direction goes through its own `Channel`, which
drops, delays, reorders and rate-limits datagrams as its `Impairment` says.
Everything is seeded, so a run can be repeated.

ICE has to be pointed at the relay: `relay_offer` rewrites the candidates of
an offer/answer exchange (the client's candidate becomes `server_facing`, the
server's becomes `client_facing`), so neither side can reach the other but
through the relay.  No product code changes for it.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Address = tuple[str, int]


@dataclass(frozen=True)
class GilbertElliott:
    """Bursty loss: a two-state Markov chain, moved once per packet.

    `p`: chance to go from the good state to the bad one; `r`: from bad to
    good (so a burst lasts 1/r packets on average); each state drops with its
    own probability.
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    @classmethod
    def with_mean(cls, loss: float, burst: float) -> GilbertElliott:
        """The chain whose long-run loss is `loss`, in bursts of `burst` packets on average."""
        if not 0 < loss < 1 or burst < 1:
            raise ValueError("loss must be in (0, 1) and burst at least 1 packet")
        r = 1.0 / burst
        return cls(p=loss * r / (1 - loss), r=r)

    @property
    def mean_loss(self) -> float:
        bad = self.p / (self.p + self.r)
        return bad * self.loss_bad + (1 - bad) * self.loss_good


@dataclass(frozen=True)
class Impairment:
    """What one direction of the link does to datagrams.

    loss: independent drop probability; burst: Gilbert–Elliott loss (on top);
    delay: fixed one-way delay (s); jitter: extra delay, uniform in [0, jitter] s;
    reorder: whether jitter may swap packets (else they keep their order);
    rate: bandwidth cap in bit/s (0: none), with a queue of `queue` bytes that
    drops what does not fit (default: 200 ms at the cap);
    outages: (start, length) in seconds from the channel's start, all dropped.
    """

    loss: float = 0.0
    burst: GilbertElliott | None = None
    delay: float = 0.0
    jitter: float = 0.0
    reorder: bool = False
    rate: int = 0
    queue: int = 0
    outages: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not 0 <= self.loss <= 1 or self.delay < 0 or self.jitter < 0 or self.rate < 0 or self.queue < 0:
            raise ValueError(f"invalid impairment {self}")

    @property
    def queue_bytes(self) -> int:
        return self.queue or max(3000, self.rate // 8 // 5)


@dataclass
class ChannelCounters:
    offered: int = 0
    offered_bytes: int = 0  # what the link's sender put on it (a cap's sender: is it under the cap?)
    delivered: int = 0
    lost: int = 0  # random or bursty loss
    overflow: int = 0  # the capped link's queue was full
    outage: int = 0
    reordered: int = 0
    # RTP packets offered, by payload type (the RTP header stays clear under SRTP)
    payload_types: Counter[int] = field(default_factory=Counter)


class Channel:
    """One direction: decides, for each datagram, when it arrives, or that it never does."""

    def __init__(self, impairment: Impairment, rng: random.Random, start: float = 0.0) -> None:
        self.impairment = impairment
        self.counters = ChannelCounters()
        self._rng = rng
        self._start = start
        self._bad = False  # Gilbert–Elliott state
        self._link_free_at = start  # when the capped link has sent its queue
        self._last_arrival = start
        self._outages: list[tuple[float, float]] = []

    def set(self, impairment: Impairment) -> None:
        self.impairment = impairment

    def outage(self, now: float, length: float) -> None:
        """Drop everything from `now` for `length` seconds."""
        self._outages.append((now, now + length))

    def admit(self, now: float, size: int) -> float | None:
        """The time the datagram arrives, or None if dropped."""
        imp, c = self.impairment, self.counters
        c.offered += 1
        c.offered_bytes += size
        if self._in_outage(now):
            c.outage += 1
            return None
        if imp.burst is not None:
            g = imp.burst
            self._bad = (self._rng.random() >= g.r) if self._bad else (self._rng.random() < g.p)
            if self._rng.random() < (g.loss_bad if self._bad else g.loss_good):
                c.lost += 1
                return None
        if imp.loss and self._rng.random() < imp.loss:
            c.lost += 1
            return None
        sent = now
        if imp.rate:
            backlog = max(0.0, self._link_free_at - now) * imp.rate / 8
            if backlog + size > imp.queue_bytes:
                c.overflow += 1
                return None
            self._link_free_at = max(now, self._link_free_at) + size * 8 / imp.rate
            sent = self._link_free_at
        arrival = sent + imp.delay + (self._rng.uniform(0, imp.jitter) if imp.jitter else 0.0)
        if arrival <= self._last_arrival:
            if imp.reorder and arrival < self._last_arrival:
                c.reordered += 1
            elif not imp.reorder:
                # strictly after the one before: asyncio fires timers due at the same time in no set
                # order, so two datagrams given the same arrival could swap (they did: the patient's
                # browser NACKed half the packets of a jittered leg that lost none)
                arrival = self._last_arrival + 1e-6
        self._last_arrival = max(self._last_arrival, arrival)
        c.delivered += 1
        return arrival

    def _in_outage(self, now: float) -> bool:
        t = now - self._start
        if any(start <= t < start + length for start, length in self.impairment.outages):
            return True
        return any(start <= now < end for start, end in self._outages)


class _Side(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, Address], None]) -> None:
        self.on_datagram = on_datagram
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.on_datagram(data, addr)


class UdpRelay:
    """Relays UDP between one client and one server through two impaired channels.

    up: client → server; down: server → client.  Datagrams from any other
    address are ignored.  The server's address may be set after the start
    (`server`), as ICE tells it.
    """

    def __init__(self, client: Address | None, server: Address | None,
                 up: Impairment = Impairment(), down: Impairment = Impairment(), seed: int = 1,
                 host: str = "127.0.0.1") -> None:
        self.client = client
        self.server = server
        self._host = host
        self._rng = random.Random(seed)
        self._up_spec, self._down_spec = up, down
        self.up: Channel | None = None
        self.down: Channel | None = None
        self._client_side: _Side | None = None
        self._server_side: _Side | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timers: set[asyncio.TimerHandle] = set()

    async def start(self) -> UdpRelay:
        loop = self._loop = asyncio.get_running_loop()
        now = loop.time()
        self.up = Channel(self._up_spec, random.Random(self._rng.random()), now)
        self.down = Channel(self._down_spec, random.Random(self._rng.random()), now)
        _, self._client_side = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_client), local_addr=(self._host, 0))
        _, self._server_side = await loop.create_datagram_endpoint(
            lambda: _Side(self._from_server), local_addr=(self._host, 0))
        return self

    @property
    def client_facing(self) -> Address:
        """Where the client sends (the address it must believe is the server's)."""
        return _address(self._client_side)

    @property
    def server_facing(self) -> Address:
        """Where the server sends (the address it must believe is the client's)."""
        return _address(self._server_side)

    def set(self, up: Impairment | None = None, down: Impairment | None = None) -> None:
        assert self.up is not None and self.down is not None, "start() first"
        if up is not None:
            self.up.set(up)
        if down is not None:
            self.down.set(down)

    def outage(self, length: float) -> None:
        """Both directions go dark from now for `length` seconds."""
        assert self._loop is not None and self.up is not None and self.down is not None
        now = self._loop.time()
        self.up.outage(now, length)
        self.down.outage(now, length)

    def _from_client(self, data: bytes, addr: Address) -> None:
        if self.client is None:
            self.client = addr
        if addr[:2] == self.client[:2] and self.server is not None:
            self._pass(self.up, self._server_side, data, self.server)

    def _from_server(self, data: bytes, addr: Address) -> None:
        if self.server is not None and addr[:2] == self.server[:2] and self.client is not None:
            self._pass(self.down, self._client_side, data, self.client)

    def _pass(self, channel: Channel | None, side: _Side | None, data: bytes, to: Address) -> None:
        assert channel is not None and side is not None and side.transport is not None and self._loop is not None
        now = self._loop.time()
        if len(data) > 12 and 0x80 <= data[0] < 0xC0 and not 64 <= data[1] & 0x7F < 96:  # RTP, not RTCP
            channel.counters.payload_types[data[1] & 0x7F] += 1
        at = channel.admit(now, len(data))
        if at is None:
            return
        transport = side.transport
        if at <= now:
            transport.sendto(data, to)
            return
        timer: asyncio.TimerHandle

        def deliver() -> None:
            self._timers.discard(timer)
            if not transport.is_closing():
                transport.sendto(data, to)

        timer = self._loop.call_at(at, deliver)
        self._timers.add(timer)

    def close(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for side in (self._client_side, self._server_side):
            if side is not None and side.transport is not None:
                side.transport.close()


def _address(side: _Side | None) -> Address:
    assert side is not None and side.transport is not None, "start() first"
    host, port = side.transport.get_extra_info("sockname")[:2]
    return host, port


# a=candidate:foundation component transport priority address port typ type ...
_CANDIDATE = re.compile(r"^a=candidate:(\S+) (\d+) (\S+) (\d+) (\S+) (\d+) typ (\S+)(.*)$")


def udp_candidates(sdp: str) -> list[Address]:
    """The UDP candidates of an SDP, in order."""
    out = []
    for line in sdp.splitlines():
        m = _CANDIDATE.match(line.strip())
        if m and m.group(3).lower() == "udp":
            out.append((m.group(5), int(m.group(6))))
    return out


def point_candidates(sdp: str, to: Address) -> str:
    """The SDP with its first UDP candidate made a host candidate at `to` and every other dropped.

    With only the relay's address known to each side, no ICE pair bypasses the relay.
    """
    lines, done = [], False
    for line in sdp.split("\r\n"):
        m = _CANDIDATE.match(line)
        if m is None:
            lines.append(line)
            continue
        if not done and m.group(3).lower() == "udp":
            lines.append(f"a=candidate:{m.group(1)} {m.group(2)} udp {m.group(4)} {to[0]} {to[1]} typ host")
            done = True
    if not done:
        raise ValueError("the SDP has no UDP candidate to point at the relay")
    return "\r\n".join(lines)


async def relay_offer(offer: str, answer: Callable[[str], Awaitable[str]], up: Impairment = Impairment(),
                      down: Impairment = Impairment(), seed: int = 1) -> tuple[str, UdpRelay]:
    """Answer `offer` with `answer`, through a new relay; returns the answer for the client and the relay.

    The client made the offer: it is `client`; whoever answers is `server`.
    """
    (client, *_) = udp_candidates(offer) or [None]
    if client is None:
        raise ValueError("the offer has no UDP candidate")
    relay = await UdpRelay(client, None, up, down, seed).start()
    try:
        answered = await answer(point_candidates(offer, relay.server_facing))
        (server, *_) = udp_candidates(answered) or [None]
        if server is None:
            raise ValueError("the answer has no UDP candidate")
        relay.server = server
        return point_candidates(answered, relay.client_facing), relay
    except BaseException:
        relay.close()
        raise


@dataclass
class RelayedOffers:
    """Every offer of one side answered through a relay (a reconnection gets a new one).

    `install(cls, "handle_offer", wants)` wraps an answering method (e.g. the
    SFU's `Participant.handle_offer`) for the objects `wants(obj)` accepts;
    the relays share the impairment set with `set` and the outages.
    """

    up: Impairment = Impairment()
    down: Impairment = Impairment()
    seed: int = 1
    relays: list[UdpRelay] = field(default_factory=list)

    def install(self, cls: type, name: str, wants: Callable[[Any], bool]) -> Callable[[], None]:
        """Wrap `cls.name`; returns the function that puts it back."""
        original = getattr(cls, name)
        owner = self

        async def answer_through_relay(obj: Any, sdp: str) -> str:
            if not wants(obj):
                return str(await original(obj, sdp))
            answered, relay = await relay_offer(sdp, lambda s: original(obj, s), owner.up, owner.down,
                                                owner.seed + len(owner.relays))
            owner.relays.append(relay)
            return answered

        setattr(cls, name, answer_through_relay)
        return lambda: setattr(cls, name, original)

    def set(self, up: Impairment | None = None, down: Impairment | None = None) -> None:
        self.up, self.down = up or self.up, down or self.down
        for relay in self.relays:
            relay.set(up, down)

    def outage(self, length: float) -> None:
        for relay in self.relays:
            relay.outage(length)

    def counters(self) -> dict[str, ChannelCounters]:
        """The current relay's counters, per direction."""
        relay = self.relays[-1]
        assert relay.up is not None and relay.down is not None
        return {"up": relay.up.counters, "down": relay.down.counters}

    def close(self) -> None:
        for relay in self.relays:
            relay.close()

