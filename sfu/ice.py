"""Which addresses and UDP ports the SFU's ICE uses.

aioice gathers host candidates on every interface except loopback, on any
ephemeral port.  An operator needs both under control (a firewall opens one UDP
range; a server announces only its public address), and tests need loopback.
aioice has no setting for either, so `IcePolicy.install()` replaces
`aioice.ice.get_host_addresses` and `Connection.get_component_candidates`
process-wide.  The server gathers host candidates only: browsers use STUN/TURN,
the server is the reachable end.  Every socket it binds passes its datagrams
through the policy's `UdpGuard` first (udp_guard.py).

Behind 1:1 NAT (a cloud VM, a Docker bridge) the bound address is not the one
browsers can reach: `announced` maps a bound address to the address(es) put in
its candidates instead (mediasoup's announcedAddress); one socket per announced
address, since aioice pairs one candidate per socket.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
from dataclasses import dataclass, field
from collections.abc import Callable
from typing import Any

import aioice.ice
from aioice.candidate import Candidate, candidate_foundation, candidate_priority

from . import aiortc_hooks as hooks
from .arrival import stamps, wall_clock
from .udp_guard import RTCP, RTP, STUN, UdpGuard, well_formed_media

logger = logging.getLogger(__name__)

_ORIGINAL_GET_HOST_ADDRESSES = hooks.original_host_addresses()


@dataclass(frozen=True, slots=True)
class IcePolicy:
    """Addresses to bind and announce (empty: every interface) and the UDP range."""

    addresses: list[str] = field(default_factory=list)
    port_min: int = 40000
    port_max: int = 40999
    # bound address -> addresses announced for it (the NAT's outside addresses)
    announced: dict[str, list[str]] = field(default_factory=dict)
    # drops malformed or misdirected datagrams; its counters are the operator's metric
    guard: UdpGuard = field(default_factory=UdpGuard, compare=False)

    def host_addresses(self, use_ipv4: bool, use_ipv6: bool) -> list[str]:
        if not self.addresses:
            return _ORIGINAL_GET_HOST_ADDRESSES(use_ipv4, use_ipv6) + (["127.0.0.1"] if use_ipv4 else [])
        return [a for a in self.addresses if (":" in a and use_ipv6) or (":" not in a and use_ipv4)]

    def install(self) -> None:
        """Apply this policy to every ICE connection made from now on in this process."""
        hooks.replace_host_addresses(self.host_addresses)
        hooks.replace_candidate_gathering(self._gather)

    async def _gather(self, conn: aioice.ice.Connection, component: int, addresses: list[str]) -> list[Candidate]:
        loop = asyncio.get_running_loop()
        candidates = []
        for address in addresses:
            for announce in self.announced.get(address) or [address]:
                bound = await self._bind(loop, conn, address)
                if bound is None:
                    logger.warning("ICE could not bind %s in ports %d-%d", address, self.port_min, self.port_max)
                    continue
                protocol, port = bound
                # 1:1 NAT keeps the port: the outside address with the bound port reaches this socket
                protocol.local_candidate = Candidate(
                    foundation=candidate_foundation("host", "udp", announce),
                    component=component,
                    transport="udp",
                    priority=candidate_priority(component, "host"),
                    host=announce,
                    port=port,
                    type="host",
                )
                hooks.add_ice_protocol(conn, protocol)
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
    """aioice's socket protocol behind a `UdpGuard`: where every datagram enters.

    `media`, once set (sfu/ingress.py), takes the admitted RTP/RTCP datagrams
    first; it returns False for those it leaves to aiortc (before the DTLS keys).
    """

    def __init__(self, receiver: aioice.ice.Connection, guard: UdpGuard) -> None:
        super().__init__(receiver)
        self._guard = guard
        self.media: Callable[[bytes], bool] | None = None
        # the kernel's arrival time of the datagram being handled (sfu/arrival.py)
        self.arrival: Callable[[], float] = wall_clock
        self._pairs = hooks.connection_pairs(receiver)
        # the selected pair and its remote address once a datagram was seen to come from it:
        # the common case (every media packet) then costs one identity and one tuple check
        self._leg: tuple[Any, tuple[Any, ...]] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.arrival = stamps(transport.get_extra_info("socket"))

    def datagram_received(self, data: bytes | str, addr: tuple[Any, ...]) -> None:
        assert isinstance(data, bytes)
        leg, media = self._leg, self.media
        if (leg is not None and media is not None and leg[1] == addr and well_formed_media(data, self._guard.max_size)
                and leg[0] is self._pairs.get(self.local_candidate.component)):
            # the common case, once per media packet: well-formed SRTP/SRTCP from the selected pair
            # (what `admit` would let through), straight to the fast path
            try:
                if not media(data):
                    self.receiver.data_received(data, self.local_candidate.component)
            except Exception as exc:
                self._guard.failed(data, exc)
            return
        protocol = self._guard.admit(data, lambda: self._from_leg(addr))
        if protocol is None:
            return
        try:
            if protocol == STUN:
                super().datagram_received(data, addr)
            elif (protocol == RTP or protocol == RTCP) and self.media is not None and self.media(data):
                pass  # the SFU's fast path took it
            else:  # what aioice does with non-STUN, minus its attempt to parse it as STUN
                self.receiver.data_received(data, self.local_candidate.component)
        except Exception as exc:  # aioice's STUN parser and handlers raise on odd input
            self._guard.failed(data, exc)

    def _from_leg(self, addr: tuple[Any, ...]) -> bool:
        # the selected pair once ICE chose one; before, any pair being checked
        component = self.local_candidate.component
        leg, pair = self._leg, self._pairs.get(component)
        if leg is not None and leg[0] is pair and leg[1] == addr:
            return True
        if not hooks.is_from_pair(self.receiver, self, component, addr):
            return False
        self._leg = (pair, addr) if pair is not None else None
        return True
