"""Which address is the client's, behind proxies the operator trusts (and only them)."""

from __future__ import annotations

from signaling.proxy import ProxyTrust

TRUST = ProxyTrust(["127.0.0.1/32", "10.0.0.0/8"])


def test_headers_from_an_untrusted_peer_are_ignored() -> None:
    assert TRUST.client_address("203.0.113.9", {"X-Forwarded-For": "198.51.100.1"}) == "203.0.113.9"
    assert ProxyTrust([]).client_address("127.0.0.1", {"X-Forwarded-For": "198.51.100.1"}) == "127.0.0.1"


def test_the_first_untrusted_hop_from_the_right_is_the_client() -> None:
    # the client wrote a fake first entry; our proxies appended the real hops
    headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1, 10.1.2.3"}
    assert TRUST.client_address("127.0.0.1", headers) == "198.51.100.1"


def test_forwarded_header_with_ports_and_ipv6() -> None:
    headers = {"Forwarded": 'for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"'}
    assert TRUST.client_address("127.0.0.1", headers) == "2001:db8:cafe::17"
    assert TRUST.client_address("127.0.0.1", {"Forwarded": "for=192.0.2.60:8080"}) == "192.0.2.60"


def test_garbage_stops_at_the_last_readable_address() -> None:
    assert TRUST.client_address("127.0.0.1", {"X-Forwarded-For": "<script>"}) == "127.0.0.1"
    assert TRUST.client_address("127.0.0.1", {"X-Forwarded-For": "unknown, 10.0.0.2"}) == "10.0.0.2"
    assert TRUST.client_address("127.0.0.1", {}) == "127.0.0.1"
