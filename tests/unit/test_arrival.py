"""The kernel's receive time of each datagram (sfu/arrival.py), on real loopback sockets.

Transport-wide feedback tells a publisher's browser when its packets arrived:
datagrams the event loop reads late, in a burst, must keep the times they came.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import aioice
import pytest

from sfu.arrival import stamps, wall_clock
from sfu.ice import GuardedProtocol
from sfu.udp_guard import UdpGuard

# an RTP header (version 2, payload type 96) and a little payload: what the guard admits as RTP
RTP = bytes([0x80, 96, 0, 1]) + bytes(8) + b"media"


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with receiver, sender:
        yield receiver, sender


def warm_up(clock: Callable[[], float], send: Callable[[], Any], read: Callable[[], Any]) -> None:
    """The kernel may turn stamping on a moment after a socket asked: wait until a datagram carries one."""
    for _ in range(50):
        send()
        time.sleep(0.01)
        before = time.time()
        read()
        if clock() < before:
            return
    raise AssertionError("the kernel never stamped a datagram")


def test_datagrams_read_late_in_a_burst_keep_the_times_they_arrived(
    pair: tuple[socket.socket, socket.socket]
) -> None:
    receiver, sender = pair
    clock = stamps(receiver)
    assert clock is not wall_clock
    address = receiver.getsockname()
    warm_up(clock, lambda: sender.sendto(b"warm", address), lambda: receiver.recv(64))
    sender.sendto(b"first", address)
    time.sleep(0.01)
    between = time.time()
    time.sleep(0.01)
    sender.sendto(b"second", address)
    time.sleep(0.01)
    read_at = time.time()  # both wait in the socket until now: a stalled event loop
    assert receiver.recv(64) == b"first"
    first = clock()
    assert receiver.recv(64) == b"second"
    second = clock()
    assert first < between < second < read_at


def test_without_a_socket_to_ask_the_clock_is_the_wall_clock() -> None:
    assert stamps(object()) is wall_clock
    assert stamps(None) is wall_clock


async def test_the_guarded_media_port_gives_media_the_kernels_arrival_time() -> None:
    loop = asyncio.get_running_loop()
    connection = aioice.Connection(ice_controlling=True)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: GuardedProtocol(connection, UdpGuard()), local_addr=("127.0.0.1", 0))
    try:
        assert isinstance(protocol, GuardedProtocol)
        protocol._from_leg = lambda addr: True  # type: ignore[method-assign]  # as if from the selected pair
        seen: list[tuple[bytes, float]] = []

        def media(data: bytes) -> bool:
            seen.append((data, protocol.arrival()))
            return True

        protocol.media = media
        address = transport.get_extra_info("sockname")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(50):  # until the kernel stamps (see warm_up)
                sent = time.time()
                sender.sendto(RTP, address)
                await asyncio.sleep(0.01)
                if seen and seen[-1][1] < sent + 0.005:
                    break
            seen.clear()
            # the event loop is busy (no await) while two datagrams come in
            sender.sendto(RTP + b"1", address)
            time.sleep(0.01)
            between = time.time()
            time.sleep(0.01)
            sender.sendto(RTP + b"2", address)
            time.sleep(0.01)
            resumed = time.time()
            for _ in range(100):
                await asyncio.sleep(0.001)
                if len(seen) == 2:
                    break
        assert [data[-1:] for data, _ in seen] == [b"1", b"2"]
        assert seen[0][1] < between < seen[1][1] < resumed
    finally:
        transport.close()
        await connection.close()
