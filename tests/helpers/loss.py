"""Packet loss injected in user space on the SFU's side of a connection (no netem here)."""

from __future__ import annotations

import random
from typing import Any

from sfu import Participant


def is_rtp(data: bytes) -> bool:
    # RTP version 2, and not RTCP (payload types 200-204 with the marker bit)
    return len(data) > 12 and 128 <= data[0] < 192 and not 192 <= data[1] <= 223


def inject_loss(participant: Participant, rate: float, rng: random.Random) -> dict[str, int]:
    """Drop `rate` of the RTP packets both ways on the server side of a participant's
    ICE connection, in user space (this kernel has no netem)."""
    dropped = {"in": 0, "out": 0}
    assert participant.pc is not None
    connection = participant.pc.getTransceivers()[0].receiver.transport.transport._connection
    for protocol in connection._protocols:
        receive = protocol.datagram_received

        def datagram_received(data: Any, addr: Any, receive: Any = receive) -> None:
            if isinstance(data, bytes) and is_rtp(data) and rng.random() < rate:
                dropped["in"] += 1
                return
            receive(data, addr)

        protocol.datagram_received = datagram_received
        drop_sent(protocol, rate, rng, dropped)
    return dropped


class _LossySocket:
    """An asyncio datagram transport that loses some RTP it is asked to send."""

    def __init__(self, transport: Any, rate: float, rng: random.Random, dropped: dict[str, int]) -> None:
        self._transport, self._rate, self._rng, self._dropped = transport, rate, rng, dropped

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if is_rtp(data) and self._rng.random() < self._rate:
            self._dropped["out"] += 1
            return
        self._transport.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def drop_sent(protocol: Any, rate: float, rng: random.Random, dropped: dict[str, int]) -> None:
    """Lose `rate` of the RTP the SFU sends through an aioice protocol's socket (counted in dropped["out"])."""
    protocol.transport = _LossySocket(protocol.transport, rate, rng, dropped)
