"""The SFU behind a real 1:1 NAT (nftables DNAT/SNAT inside the test's network namespace).

The server binds 10.99.0.1 ("the VM's private address"); browsers may reach it
only as 203.0.113.10 ("the public address"): nftables rewrites 203.0.113.10 to
10.99.0.1 on the way in, and drops every datagram sent to 10.99.0.1's media
ports directly.  Media flows both ways only if the server announces the public
address ([ice] announce) or finds it through STUN ([ice] discover_with_stun).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.call_page import screenshot, wait_for
from helpers.netns import counters, require_loopback_only_namespace, run
from helpers.server import running_server
from signaling.announce import announced_addresses
from signaling.config import load_config
from test_turn_relay import Coturn, _selected, coturn, media_both_ways, meet  # noqa: F401  (coturn: the fixture)

PRIVATE, PUBLIC = "10.99.0.1", "203.0.113.10"
PORTS = (43000, 43999)  # tests/server.py's ICE range
TABLE = "teleconsult_nat_test"


@pytest.fixture
def nat(coturn: Coturn) -> Iterator[Coturn]:
    require_loopback_only_namespace()
    # the browsers' own ports stay out of the SFU's range, so the guard only ever sees traffic to the SFU
    ports = Path("/proc/sys/net/ipv4/ip_local_port_range")
    saved = ports.read_text()
    ports.write_text(f"{PORTS[1] + 1} 60999")
    run("ip", "addr", "add", f"{PRIVATE}/32", "dev", "lo")
    run("ip", "route", "add", f"{PUBLIC}/32", "dev", "lo")
    lo, hi = PORTS
    rules = f"""
table ip {TABLE} {{
  chain inbound {{ type nat hook output priority -100;
    ip daddr {PUBLIC} udp dport {lo}-{hi} counter dnat to {PRIVATE}; }}
  chain outbound {{ type nat hook postrouting priority 100;
    ip saddr {PRIVATE} udp dport {coturn.port} counter snat to {PUBLIC}; }}
  chain guard {{ type filter hook output priority 0;
    ip daddr {PRIVATE} udp dport {lo}-{hi} ct original ip daddr != {PUBLIC} counter drop; }}
}}
"""
    run("nft", "-f", "-", stdin=rules)
    try:
        yield coturn
    finally:
        ports.write_text(saved)
        subprocess.run(["nft", "delete", "table", "ip", TABLE], check=False)
        subprocess.run(["ip", "route", "del", f"{PUBLIC}/32", "dev", "lo"], check=False)
        subprocess.run(["ip", "addr", "del", f"{PRIVATE}/32", "dev", "lo"], check=False)


async def test_browsers_reach_the_sfu_only_through_its_announced_address(
        tmp_path: Path, open_page: Any, nat: Coturn) -> None:
    overrides = {"ice.host_addresses": [PRIVATE], "ice.announce": [{"bind": PRIVATE, "addresses": [PUBLIC]}]}
    async with running_server(tmp_path / "data", **overrides) as server:
        doctor, patient = await meet(server, open_page)
        await media_both_ways(doctor, patient)
        for page in (doctor, patient):
            state = await wait_for(lambda p=page: _selected(p))
            assert state["selected"]["remote"]["address"] == PUBLIC, state  # the SFU, as announced
        await screenshot(doctor, "nat-01-practitioner-through-announced-address")
        dnat, _, guard = counters(TABLE)  # the DNAT, SNAT and guard rules
        assert dnat > 0 and guard == 0  # every media datagram went through the NAT; none tried the inside address


async def test_the_outside_address_is_found_through_stun(nat: Coturn) -> None:
    config = load_config(None, **{"ice.host_addresses": [PRIVATE], "ice.discover_with_stun": f"127.0.0.1:{nat.port}"})
    # coturn sees the NAT's outside address (the SNAT rule) and says so
    assert await announced_addresses(config.ice) == {PRIVATE: [PUBLIC]}
    assert counters(TABLE)[1] > 0
    # an operator's own entry wins over discovery
    config = load_config(None, **{"ice.host_addresses": [PRIVATE], "ice.discover_with_stun": f"127.0.0.1:{nat.port}",
                                  "ice.announce": [{"bind": PRIVATE, "addresses": ["198.51.100.4"]}]})
    assert await announced_addresses(config.ice) == {PRIVATE: ["198.51.100.4"]}
