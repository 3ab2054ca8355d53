"""The impairment relay does what it says, statistically, over many datagrams (seeded)."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest

from helpers.netimpair import Channel, GilbertElliott, Impairment, UdpRelay, point_candidates, relay_offer, udp_candidates

N = 20000


def _run(impairment: Impairment, n: int = N, size: int = 1000, every: float = 0.001, seed: int = 7) -> tuple[Channel, list[float | None]]:
    channel = Channel(impairment, random.Random(seed))
    return channel, [channel.admit(i * every, size) for i in range(n)]


def test_random_loss_is_close_to_the_rate() -> None:
    channel, arrivals = _run(Impairment(loss=0.05))
    lost = sum(a is None for a in arrivals) / N
    assert 0.045 < lost < 0.055, lost
    assert channel.counters.lost == sum(a is None for a in arrivals)


def test_bursty_loss_has_the_mean_and_comes_in_bursts() -> None:
    model = GilbertElliott.with_mean(0.02, burst=4)
    assert model.mean_loss == pytest.approx(0.02)
    _, arrivals = _run(Impairment(burst=model), n=100000)
    lost = [a is None for a in arrivals]
    assert 0.015 < sum(lost) / len(lost) < 0.025
    runs, length = [], 0
    for gone in lost:
        if gone:
            length += 1
        elif length:
            runs.append(length)
            length = 0
    mean_burst = sum(runs) / len(runs)
    assert 3.0 < mean_burst < 5.0, mean_burst  # independent loss at 2 % would give ~1.02
    _, independent = _run(Impairment(loss=0.02), n=100000)
    assert sum(1 for a, b in zip(independent, independent[1:]) if a is None and b is None) < 0.1 * sum(lost)


def test_delay_and_jitter_without_reordering_keep_the_order() -> None:
    _, arrivals = _run(Impairment(delay=0.075, jitter=0.04), n=5000)
    times = [a for a in arrivals if a is not None]
    # strictly increasing: asyncio fires timers due at the same time in no set order, so equal arrival
    # times let datagrams swap (a jittered leg that lost nothing had half its packets NACKed)
    assert all(b > a for a, b in zip(times, times[1:]))
    delays = [a - i * 0.001 for i, a in enumerate(arrivals) if a is not None]
    assert min(delays) >= 0.075 and max(delays) < 0.075 + 0.04 + 0.01


def test_jitter_with_reordering_reorders_within_the_jitter() -> None:
    channel, arrivals = _run(Impairment(delay=0.05, jitter=0.04, reorder=True), n=5000)
    times = [a for a in arrivals if a is not None]
    assert times != sorted(times) and channel.counters.reordered > 100
    delays = [a - i * 0.001 for i, a in enumerate(arrivals) if a is not None]
    assert 0.05 <= min(delays) and max(delays) <= 0.09


def test_the_cap_holds_the_rate_and_the_bounded_queue_drops() -> None:
    # 1000-byte datagrams offered at 8 Mbit/s into a 300 kbit/s link with a 10 kB queue
    channel, arrivals = _run(Impairment(rate=300_000, queue=10_000), n=4000)
    delivered = [a for a in arrivals if a is not None]
    span = delivered[-1] - 0.0
    rate = len(delivered) * 1000 * 8 / span
    assert 280_000 < rate <= 300_000 * 1.01, rate
    assert channel.counters.overflow == len(arrivals) - len(delivered) > 3000
    # the queue never holds more than its size: no datagram waits more than 10 kB at the cap
    waits = [a - i * 0.001 for i, a in enumerate(arrivals) if a is not None]
    assert max(waits) <= 10_000 * 8 / 300_000 + 0.03
    # what the sender put on the link, delivered or not: how the benchmark tells whether it is under the cap
    assert channel.counters.offered_bytes == 4000 * 1000


def test_under_the_cap_nothing_is_dropped() -> None:
    channel, arrivals = _run(Impairment(rate=1_000_000), n=2000, size=100, every=0.002)  # 400 kbit/s
    assert all(a is not None for a in arrivals) and channel.counters.overflow == 0


def test_scheduled_and_immediate_outages_drop_everything_then_stop() -> None:
    channel, arrivals = _run(Impairment(outages=((2.0, 5.0),)), n=10000)
    gone = [i for i, a in enumerate(arrivals) if a is None]
    assert gone == list(range(2000, 7000))
    channel.outage(20.0, 1.0)
    assert channel.admit(20.5, 100) is None and channel.admit(21.0, 100) is not None


def test_the_same_seed_gives_the_same_run() -> None:
    imp = Impairment(loss=0.1, jitter=0.02, reorder=True, burst=GilbertElliott.with_mean(0.05, 3))
    assert _run(imp, n=3000, seed=3)[1] == _run(imp, n=3000, seed=3)[1]
    assert _run(imp, n=3000, seed=3)[1] != _run(imp, n=3000, seed=4)[1]


def test_bad_impairments_are_refused() -> None:
    with pytest.raises(ValueError):
        Impairment(loss=1.5)
    with pytest.raises(ValueError):
        GilbertElliott.with_mean(0.0, 3)


OFFER = ("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
         "a=candidate:1 1 udp 2113937151 127.0.0.1 50001 typ host generation 0\r\n"
         "a=candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
         "a=candidate:3 1 udp 2113937150 127.0.0.1 50002 typ host\r\n")


def test_candidates_are_pointed_at_the_relay_and_others_dropped() -> None:
    assert udp_candidates(OFFER) == [("127.0.0.1", 50001), ("127.0.0.1", 50002)]
    pointed = point_candidates(OFFER, ("127.0.0.1", 4000))
    assert udp_candidates(pointed) == [("127.0.0.1", 4000)] and "tcp" not in pointed
    with pytest.raises(ValueError):
        point_candidates("v=0\r\n", ("127.0.0.1", 4000))


async def test_the_relay_carries_real_datagrams_both_ways_with_loss_and_delay() -> None:
    loop = asyncio.get_running_loop()
    client, server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM), socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (client, server):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    offer = OFFER.replace("50001", str(client.getsockname()[1]))
    server_port = server.getsockname()[1]

    async def answer(sdp: str) -> str:
        (to_client,) = udp_candidates(sdp)
        answer.seen = to_client  # type: ignore[attr-defined]
        return OFFER.replace("50001", str(server_port))

    answered, relay = await relay_offer(offer, answer, up=Impairment(loss=0.2), down=Impairment(delay=0.05), seed=5)
    try:
        to_server = udp_candidates(answered)[0]
        assert to_server == relay.client_facing and answer.seen == relay.server_facing  # type: ignore[attr-defined]
        got: list[int] = []

        async def read() -> None:
            while True:
                data = await loop.sock_recv(server, 100)
                if len(data) == 2:
                    got.append(int.from_bytes(data, "big"))

        reader = asyncio.ensure_future(read())
        rtp = bytes([0x80, 0x80 | 63]) + bytes(12)  # an RTP packet, PT 63 with the marker
        rtcp = bytes([0x80, 201]) + bytes(12)  # a receiver report
        client.sendto(rtp, to_server)
        client.sendto(rtcp, to_server)
        await asyncio.sleep(0.05)
        assert relay.up is not None and relay.up.counters.payload_types == {63: 1}
        for i in range(500):
            client.sendto(i.to_bytes(2, "big"), to_server)
            await asyncio.sleep(0.001 if i % 10 == 9 else 0)
        await asyncio.sleep(0.2)
        reader.cancel()
        assert 0.7 < len(got) / 500 < 0.9 and got == sorted(got)
        started = loop.time()
        server.sendto(b"back", relay.server_facing)
        assert await asyncio.wait_for(loop.sock_recv(client, 100), 2) == b"back"
        assert loop.time() - started >= 0.045  # the datagram waited for the down-link's delay
        # a stranger's datagrams go nowhere
        stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        stranger.sendto(b"x", relay.server_facing)
        stranger.close()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_recv(client, 100), 0.2)
    finally:
        relay.close()
        client.close()
        server.close()
