"""Hostile datagrams for the SFU's media ports: random, mutated, and shaped like each protocol.

Shared by tests/integration/test_udp_fuzz.py and benchmarks/udp_fuzz.py.  Every
generator is seeded: a failing run can be replayed.
"""

from __future__ import annotations

import asyncio
import random
import socket
import struct
from collections.abc import Callable, Iterator
from typing import Any

from aioice import stun

Shape = Callable[[random.Random], bytes]


def empty(rng: random.Random) -> bytes:
    return b""


def noise(rng: random.Random) -> bytes:
    return rng.randbytes(rng.choice((1, 2, 3, 11, 12, 13, 19, 20, 21, rng.randrange(1, 9001))))


def _stun_header(rng: random.Random, body: bytes, length: int | None = None) -> bytes:
    kind = rng.choice((0x0001, 0x0101, 0x0111, 0x0003, 0x0004, rng.randrange(0x4000)))
    size = len(body) if length is None else length
    return struct.pack("!HHI12s", kind, size & 0xFFFF, 0x2112A442, rng.randbytes(12)) + body


def stun_bad(rng: random.Random) -> bytes:
    """A STUN header followed by attributes of the wrong size, family, encoding or length."""
    attributes = b""
    for _ in range(rng.randrange(1, 5)):
        kind = rng.choice((0x0001, 0x0006, 0x0008, 0x0009, 0x000C, 0x0020, 0x0024, 0x0025, 0x8028,
                           0x8029, 0x802A, 0x802B, rng.randrange(0x10000)))
        value = rng.randbytes(rng.choice((0, 1, 2, 3, 5, 7, 9, 19, 21, rng.randrange(64))))
        if kind in (0x0001, 0x0020) and len(value) > 1:
            value = value[:1] + bytes([rng.choice((0, 1, 2, 3, 9))]) + value[2:]
        declared = len(value) if rng.random() < 0.7 else rng.randrange(0x10000)
        attributes += struct.pack("!HH", kind, declared) + value + bytes(-len(value) % 4)
    length = None if rng.random() < 0.7 else rng.randrange(0x10000)
    data = _stun_header(rng, attributes, length)
    return data[:rng.randrange(1, len(data) + 1)] if rng.random() < 0.1 else data


def stun_valid_shape(rng: random.Random) -> bytes:
    """A well-formed unauthenticated Binding request (aioice answers 400)."""
    message = stun.Message(message_method=stun.Method.BINDING, message_class=stun.Class.REQUEST)
    if rng.random() < 0.5:
        message.attributes["USERNAME"] = f"{rng.randrange(10**6)}:{rng.randrange(10**6)}"
    message.attributes["PRIORITY"] = rng.getrandbits(32)
    return bytes(message)


def rtp(rng: random.Random) -> bytes:
    """An RTP header with random fields, any payload length up to 9,000 bytes."""
    b0 = rng.choice((0x80, 0x90, 0xA0, 0xB0, 0x8F, 0x40, 0xC0, 0x00)) | rng.randrange(16)
    header = struct.pack("!BBHII", b0, rng.randrange(256), rng.randrange(0x10000), rng.getrandbits(32),
                         rng.getrandbits(32))
    if b0 & 0x10 and rng.random() < 0.8:
        header += struct.pack("!HH", 0xBEDE, rng.randrange(0x10000))
    size = rng.choice((0, 1, 4, 10, rng.randrange(1500), rng.randrange(9001)))
    return (header + rng.randbytes(size))[:9000]


def rtcp(rng: random.Random) -> bytes:
    b0 = rng.choice((0x80, 0x81, 0xA0, 0x8F, 0x40, 0xC1))
    pt = rng.choice((200, 201, 202, 203, 204, 205, 206, 207, rng.randrange(192, 224)))
    size = rng.choice((0, 4, 20, rng.randrange(1500), rng.randrange(9001)))
    header = struct.pack("!BBH", b0, pt, rng.randrange(0x10000)) + rng.randbytes(4)
    return (header + rng.randbytes(size))[:9000]


def dtls(rng: random.Random) -> bytes:
    """DTLS-looking records: right or wrong content type, version, epoch and lengths."""
    data = b""
    for _ in range(rng.randrange(1, 4)):
        body = rng.randbytes(rng.choice((0, 1, 12, 100, rng.randrange(1400))))
        declared = len(body) if rng.random() < 0.6 else rng.randrange(0x10000)
        content = rng.choice((20, 21, 22, 23, 25, rng.randrange(20, 64)))
        version = rng.choice((b"\xfe\xfd", b"\xfe\xff", b"\x03\x03", rng.randbytes(2)))
        data += bytes([content]) + version + rng.randbytes(8) + struct.pack("!H", declared) + body
    return data[:rng.randrange(1, len(data) + 1)] if rng.random() < 0.2 else data


SHAPES: dict[str, Shape] = {
    "empty": empty, "noise": noise, "stun-bad": stun_bad, "stun": stun_valid_shape,
    "rtp": rtp, "rtcp": rtcp, "dtls": dtls,
}


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Flip, cut, repeat or extend a datagram (a real one captured on the leg, typically)."""
    out = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(4)
        if op == 0 and out:
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        elif op == 1:
            del out[rng.randrange(len(out) + 1):]
        elif op == 2:
            out += out[: 9000 - len(out)]
        else:
            out += rng.randbytes(rng.randrange(64))
    return bytes(out[:9000])


def datagrams(rng: random.Random, n: int, samples: list[bytes] | None = None) -> Iterator[tuple[str, bytes]]:
    """`n` (shape name, datagram) pairs; mutations of `samples` when given."""
    names = list(SHAPES) + (["mutated"] * 2 if samples else [])
    for _ in range(n):
        name = rng.choice(names)
        if name == "mutated":
            assert samples is not None
            yield name, mutate(rng, rng.choice(samples))
        else:
            yield name, SHAPES[name](rng)


def server_ports(participant: Any) -> list[tuple[str, int]]:
    """The UDP addresses a participant's peer connection listens on (from the server's objects)."""
    pc = participant.pc
    assert pc is not None, "the participant has no media"
    addresses = []
    for dtls in {t.receiver.transport for t in pc.getTransceivers()}:
        for protocol in dtls.transport._connection._protocols:
            addresses.append(protocol.transport.get_extra_info("sockname")[:2])
    return addresses


def leg_socket(pc: Any) -> tuple[Any, tuple[str, int]]:
    """A client peer connection's selected socket and the server address it talks to.

    Sending through it makes a datagram come from the leg's own address, as a
    spoofed-source attacker's would.
    """
    for dtls in {t.receiver.transport for t in pc.getTransceivers()}:
        pair = dtls.transport._connection._nominated.get(1)
        if pair is not None:
            return pair.protocol.transport, pair.remote_addr
    raise AssertionError("no connected transport")


class Sprayer:
    """Sends datagrams from a stranger's socket (and optionally the leg's), paced to spare the loop."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.sent = 0

    async def spray(self, targets: list[tuple[str, int]], items: Iterator[tuple[str, bytes]],
                    leg: tuple[Any, tuple[str, int]] | None = None, batch: int = 50,
                    counts: dict[str, int] | None = None) -> None:
        """Every item to every target; with `leg`, every other one (all without targets) through its socket."""
        for i, (name, data) in enumerate(items):
            if counts is not None:
                counts[name] = counts.get(name, 0) + 1
            if leg is not None and (i % 2 or not targets):
                transport, server = leg
                transport.sendto(data, server)
                self.sent += 1
            else:
                for target in targets:
                    try:
                        self.sock.sendto(data, target)
                        self.sent += 1
                    except BlockingIOError:  # the socket buffer is full: let the server read
                        await asyncio.sleep(0.005)
            if i % batch == batch - 1:
                await asyncio.sleep(0.002)  # the server runs in this loop: let it read

    def close(self) -> None:
        self.sock.close()
