"""The client's real address behind reverse proxies the operator trusts.

Behind nginx every request comes from 127.0.0.1; the client's address is in
X-Forwarded-For (or RFC 7239 Forwarded).  Those headers are believed only
when the request comes from a network in `[http] trusted_proxies`: anyone
else could write them to dodge a rate limit or blame someone else in the log.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable, Mapping

from aiohttp import web
from aiohttp.typedefs import Middleware

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# the address the connection itself came from (the proxy's), kept for the access log
PEER = web.RequestKey("peer_address", str)
CLIENT = web.RequestKey("client_address", str)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """`1.2.3.4`, `1.2.3.4:5`, `[::1]:5`, `::1` or `"[::1]"` -> the address; None when not one."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def forwarded_chain(headers: Mapping[str, str]) -> list[str]:
    """The addresses the proxies reported, first hop first (Forwarded wins over X-Forwarded-For)."""
    forwarded = headers.get("Forwarded")
    if forwarded:
        chain = []
        for element in forwarded.split(","):
            for pair in element.split(";"):
                name, _, value = pair.partition("=")
                if name.strip().lower() == "for":
                    chain.append(value)
        return chain
    return headers.get("X-Forwarded-For", "").split(",")


class ProxyTrust:
    """Which peers may name the client, and who the client is."""

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks: list[Network] = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, address: str | None) -> bool:
        found = _address(address or "")
        return found is not None and any(found in net for net in self._networks)

    def client_address(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The first untrusted hop, read from the right; the peer itself when it is not a trusted proxy."""
        if not peer or not self.trusted(peer):
            return peer or "unknown"
        client = peer
        for hop in reversed(forwarded_chain(headers)):
            found = _address(hop)
            if found is None:
                break  # garbage (or "unknown"): stop at the last address we could read
            client = str(found)
            if not self.trusted(client):
                break
        return client

    def middleware(self) -> Middleware:
        """Every handler then sees the client's address as `request.remote` (and https when the proxy says so)."""

        @web.middleware
        async def real_client(request: web.Request, handler: Handler) -> web.StreamResponse:
            peer = request.remote or "unknown"
            client = self.client_address(peer, request.headers)
            request[PEER], request[CLIENT] = peer, client
            if client == peer:
                return await handler(request)
            proto = request.headers.get("X-Forwarded-Proto", "").strip().lower()
            scheme = proto if proto in ("http", "https") else request.scheme
            return await handler(request.clone(remote=client, scheme=scheme))

        return real_client
