"""The public address of a bound address, asked of a STUN server (RFC 5389 Binding).

For a server behind 1:1 NAT whose operator would rather not write the public
address down: the STUN server sees the NAT's outside address and says so.
"""

from __future__ import annotations

import asyncio
import socket

from aioice import stun

from .errors import DiscoveryFailed


class _Binding(asyncio.DatagramProtocol):
    def __init__(self, transaction_id: bytes) -> None:
        self.transaction_id = transaction_id
        self.answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            message = stun.parse_message(data)
        except ValueError:
            return  # not STUN: ignore
        if message.transaction_id != self.transaction_id or self.answer.done():
            return
        mapped = message.attributes.get("XOR-MAPPED-ADDRESS") or message.attributes.get("MAPPED-ADDRESS")
        if mapped is None:
            self.answer.set_exception(DiscoveryFailed("the STUN answer names no address"))
        else:
            self.answer.set_result(str(mapped[0]))


async def public_address(bind: str, server: str, port: int = 3478, *, timeout: float = 3.0, tries: int = 3) -> str:
    """The address `server` sees for datagrams sent from `bind`; DiscoveryFailed when it does not answer."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    request = stun.Message(stun.Method.BINDING, stun.Class.REQUEST)
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _Binding(request.transaction_id), local_addr=(bind, 0), family=family)
    try:
        for _ in range(tries):  # UDP: a lost request is sent again
            transport.sendto(bytes(request), (server, port))
            try:
                return await asyncio.wait_for(asyncio.shield(protocol.answer), timeout / tries)
            except TimeoutError:
                continue
        raise DiscoveryFailed(f"no STUN answer from {server}:{port} for {bind} within {timeout:.0f} s")
    finally:
        transport.close()
