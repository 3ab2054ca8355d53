"""TURN out of the box: coturn run from the shipped deploy/coturn/turnserver.conf.

UDP to the SFU's media ports is blocked for the browsers (nftables, inside the
test's namespace), and so is UDP to coturn: only TURN over TCP is left. With
the default `iceTransportPolicy: "all"` the browsers try the direct path first
(the guard counts their attempts), then fall back to the TCP relay, and media
still flows both ways.
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
from test_turn_relay import Coturn, _selected, media_both_ways, meet, running_coturn

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "coturn" / "turnserver.conf"
SFU_PORTS = (43000, 43999)  # tests/server.py's ICE range
TABLE = "teleconsult_udp_block_test"


@pytest.fixture
def tcp_only_turn(tmp_path: Path) -> Iterator[Coturn]:
    require_loopback_only_namespace()
    with running_coturn(tmp_path, SHIPPED) as turn:
        lo, hi = SFU_PORTS
        # browsers' UDP to the SFU dropped (coturn's relay ports excepted: that is TURN reaching the SFU),
        # and UDP to coturn itself dropped: only TURN over TCP gets through
        run("nft", "-f", "-", stdin=f"""
table ip {TABLE} {{
  chain guard {{ type filter hook output priority 0;
    udp dport {lo}-{hi} udp sport != {turn.min_port}-{turn.max_port} counter drop;
    udp dport {turn.port} counter drop; }}
}}
""")
        try:
            yield turn
        finally:
            subprocess.run(["nft", "delete", "table", "ip", TABLE], check=False)


async def test_with_udp_blocked_media_goes_through_turn_over_tcp(
        tmp_path: Path, open_page: Any, tcp_only_turn: Coturn) -> None:
    turn = tcp_only_turn
    urls = [f"turn:127.0.0.1:{turn.port}?transport=udp", f"turn:127.0.0.1:{turn.port}?transport=tcp"]
    overrides = {"ice.servers": [{"urls": urls, "secret": turn.secret}]}  # transport_policy: "all", the default
    async with running_server(tmp_path / "data", **overrides) as server:
        doctor, patient = await meet(server, open_page)
        await media_both_ways(doctor, patient, timeout=40.0)  # the direct checks fail first
        for page in (doctor, patient):
            state = await wait_for(lambda p=page: _selected(p))
            assert state["policy"] == "all"
            assert {"host", "relay"} <= set(state["localTypes"]), state  # direct candidates were there too
            local = state["selected"]["local"]
            assert (local["type"], local["relayProtocol"]) == ("relay", "tcp"), state
        await screenshot(patient, "turn-tcp-01-patient-relayed-over-tcp")
    direct_dropped = counters(TABLE)[0]
    assert direct_dropped > 0  # the browsers did try the direct path first
    assert "incoming packet ALLOCATE processed, success" in turn.log()
