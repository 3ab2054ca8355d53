"""Which addresses and UDP ports the SFU's ICE uses.

aioice gathers host candidates on every interface except loopback, on any
ephemeral port.  An operator needs both under control (a firewall opens one UDP
range; a server announces only its public address), and tests need loopback.
aioice has no setting for either, so `IcePolicy.install()` replaces
`aioice.ice.get_host_addresses` and `Connection.get_component_candidates`
process-wide.  The server gathers host candidates only: browsers use STUN/TURN,
the server is the reachable end.  Every socket it binds passes its datagrams
through the policy's `UdpGuard` first (udp_guard.py).
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

from .udp_guard import STUN, UdpGuard

logger = logging.getLogger(__name__)

_ORIGINAL_GET_HOST_ADDRESSES = aioice.ice.get_host_addresses


@dataclass(frozen=True, slots=True)
class IcePolicy:
    """Addresses to bind and announce (empty: every interface) and the UDP range."""

    addresses: list[str] = field(default_factory=list)
    port_min: int = 40000
    port_max: int = 40999
    # drops malformed or misdirected datagrams; its counters are the operator's metric
    guard: UdpGuard = field(default_factory=UdpGuard, compare=False)

    def host_addresses(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if not self.addresses:
            return _ORIGINAL_GET_HOST_ADDRESSES(use_ipv4, use_ipv6) + (["127.0.0.1"] if use_ipv4 else [])
        return [a for a in self.addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    def install(self) -> None:
        """Apply this policy to every ICE connection made from now on in this process."""
        policy = self

        async def get_component_candidates(
            conn: aioice.ice.Connection, component: int, addresses: list[str], timeout: int = 5
        ) -> list[Candidate]:
            return await policy._gather(conn, component, addresses)

        aioice.ice.get_host_addresses = self.host_addresses
        aioice.ice.Connection.get_component_candidates = get_component_candidates  # type: ignore[method-assign,assignment]

    async def _gather(self, conn: aioice.ice.Connection, component: int, addresses: list[str]) -> list[Candidate]:
        loop = asyncio.get_running_loop()
        candidates = []
        for address in addresses:
            bound = await self._bind(loop, conn, address)
            if bound is None:
                logger.warning("ICE could not bind %s in ports %d-%d", address, self.port_min, self.port_max)
                continue
            protocol, port = bound
            protocol.local_candidate = Candidate(
                foundation=candidate_foundation("host", "udp", address),
                component=component,
                transport="udp",
                priority=candidate_priority(component, "host"),
                host=address,
                port=port,
                type="host",
            )
            conn._protocols.append(protocol)
            candidates.append(protocol.local_candidate)
        return candidates

    async def _bind(self, loop: asyncio.AbstractEventLoop, conn: aioice.ice.Connection, address: str) -> tuple[Any, int] | None:
        span = self.port_max - self.port_min + 1
        start = random.randrange(span)
        for i in range(span):
            port = self.port_min + (start + i) % span
            try:
                transport, protocol = await loop.create_datagram_endpoint(
                    lambda: GuardedProtocol(conn, self.guard), local_addr=(address, port)
                )
            except OSError:
                continue
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            return protocol, port
        return None


class GuardedProtocol(aioice.ice.StunProtocol):
    """aioice's socket protocol behind a `UdpGuard`: where every datagram enters."""

    def __init__(self, receiver: aioice.ice.Connection, guard: UdpGuard) -> None:
        super().__init__(receiver)
        self._guard = guard

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        assert isinstance(data, bytes)
        protocol = self._guard.admit(data, lambda: self._from_leg(addr))
        if protocol is None:
            return
        try:
            if protocol == STUN:
                super().datagram_received(data, addr)
            else:  # what aioice does with non-STUN, minus its attempt to parse it as STUN
                self.receiver.data_received(data, self.local_candidate.component)
        except Exception as exc:  # aioice's STUN parser and handlers raise on odd input
            self._guard.failed(data, exc)

    def _from_leg(self, addr: tuple[Any, ...]) -> bool:
        # the selected pair once ICE chose one; before, any pair being checked
        conn = self.receiver
        remote = (addr[0], addr[1])
        pair = conn._nominated.get(self.local_candidate.component)
        pairs = [pair] if pair is not None else conn._check_list
        return any(p.protocol is self and p.remote_addr == remote for p in pairs)
