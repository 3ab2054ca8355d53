"""Media relayed through a real TURN server (Debian's coturn) with time-limited credentials.

coturn runs on 127.0.0.1 with the TURN REST shared secret (`use-auth-secret`); our
server hands each browser a username/credential made from the same secret and
tells it `iceTransportPolicy: "relay"`, so every media packet goes through coturn.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers.call_page import accept_notice, frames_decoded, remote_colour, screenshot, shows, wait_for
from helpers.server import free_port, running_server
from playwright.async_api import Page, expect

TURNSERVER = "/usr/bin/turnserver"
REALM = "teleconsult.test"


@dataclass
class Coturn:
    port: int
    secret: str
    min_port: int
    max_port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}?transport=udp"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _udp_and_tcp_free_port() -> int:
    for _ in range(50):
        port = free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no port free for both UDP and TCP")


def _stun_binding_answered(port: int) -> bool:
    """True when a STUN Binding request to 127.0.0.1:port gets a success response."""
    txid = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, 0x2112A442) + txid
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.3)
        s.sendto(request, ("127.0.0.1", port))
        try:
            data = s.recv(2048)
        except OSError:
            return False
    return len(data) >= 20 and data[:2] == b"\x01\x01" and data[8:20] == txid


@contextmanager
def running_coturn(tmp_path: Path, config_file: Path | None = None) -> Iterator[Coturn]:
    """coturn on 127.0.0.1: with only command-line options, or `config_file` (e.g. the shipped one) overridden by them."""
    if not Path(TURNSERVER).exists() and not shutil.which(TURNSERVER):
        pytest.fail(f"coturn not found at {TURNSERVER}: run scripts/test, which installs it")
    port = _udp_and_tcp_free_port()
    min_port = 50000 + secrets.randbelow(500) * 20  # relay ports, away from the SFU's
    server = Coturn(port, secrets.token_urlsafe(24), min_port, min_port + 19, tmp_path / "turnserver.log")
    args = [
        TURNSERVER, *(["-c", str(config_file)] if config_file else ["-n"]),  # -n: only these options
        "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1", f"--listening-port={port}",
        "--use-auth-secret", f"--static-auth-secret={server.secret}", f"--realm={REALM}",
        "--allow-loopback-peers",  # our SFU is a peer on 127.0.0.1
        f"--min-port={server.min_port}", f"--max-port={server.max_port}",
        "--no-cli", "--no-tls", "--no-dtls", "--fingerprint", "--verbose",  # --verbose: log each session and request
        "--log-file=stdout", "--simple-log",
        f"--db={tmp_path / 'turndb'}", f"--pidfile={tmp_path / 'turnserver.pid'}",
    ]
    with server.log_path.open("wb") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _stun_binding_answered(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"turnserver did not start (exit {proc.poll()}):\n{server.log()[-3000:]}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # keep coturn's log with the other artifacts
        artifacts = Path(os.environ.get("TELECONSULT_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.log_path, artifacts / "turnserver.log")


@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    with running_coturn(tmp_path) as server:
        yield server


# what the browser's peer connection reports about ICE: its configuration, its
# candidates and the pair it selected
ICE_STATE = """async () => {
  const pc = window.__teleconsult?.call?.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  const out = {
    policy: pc.getConfiguration().iceTransportPolicy,
    iceServers: pc.getConfiguration().iceServers,
    iceConnectionState: pc.iceConnectionState,
    iceGatheringState: pc.iceGatheringState,
    localTypes: [], selected: null,
    errors: window.__iceErrors ?? [],
  };
  let pairId = null;
  stats.forEach((s) => {
    if (s.type === 'local-candidate') out.localTypes.push(s.candidateType);
    if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId;
  });
  const pair = pairId && stats.get(pairId);
  if (pair) {
    const local = stats.get(pair.localCandidateId), remote = stats.get(pair.remoteCandidateId);
    out.selected = {
      state: pair.state,
      local: {type: local.candidateType, address: local.address, port: local.port, relayProtocol: local.relayProtocol, url: local.url},
      remote: {type: remote.candidateType, address: remote.address, port: remote.port},
    };
  }
  return out;
}"""

# records every icecandidateerror (e.g. a TURN server refusing the credentials)
RECORD_ICE_ERRORS = """(() => {
  window.__iceErrors = [];
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('icecandidateerror', (e) =>
        window.__iceErrors.push({url: e.url, errorCode: e.errorCode, errorText: e.errorText}));
    }
  };
})();"""


async def ice_state(page: Page) -> dict[str, Any] | None:
    state: dict[str, Any] | None = await page.evaluate(ICE_STATE)
    return state


async def meet(server: Any, open_page: Any) -> tuple[Page, Page]:
    """Both sides open their link and enter the call through the UI, as in test_consultation."""
    demo = await server.demo()
    doctor: Page = await open_page("red")
    patient: Page = await open_page("blue")
    for page, link in ((doctor, demo["practitioner_link"]), (patient, demo["patient_link"])):
        await page.add_init_script(RECORD_ICE_ERRORS)
        await page.goto(link)
        if page is patient:
            await accept_notice(page)
        await expect(page.get_by_test_id("join")).to_be_visible()
    await doctor.get_by_test_id("join").click()
    await expect(patient.get_by_test_id("ready")).to_be_visible()
    await patient.get_by_test_id("ready").click()
    for page in (doctor, patient):
        await expect(page.get_by_test_id("remote-video")).to_be_visible()
    return doctor, patient


async def media_both_ways(doctor: Page, patient: Page, timeout: float = 20.0) -> None:
    """Each side sees the other's camera (red doctor, blue patient), and frames keep being decoded."""
    await wait_for(lambda: shows(doctor, "blue"), timeout=timeout)
    await wait_for(lambda: shows(patient, "red"), timeout=timeout)
    counts = [await wait_for(lambda p=p: frames_decoded(p)) for p in (doctor, patient)]
    await asyncio.sleep(1.0)
    for page, before in zip((doctor, patient), counts):
        assert await frames_decoded(page) > before


async def test_media_both_ways_through_turn_with_time_limited_credentials(
        tmp_path: Path, open_page: Any, coturn: Coturn) -> None:
    overrides = {
        "ice.servers": [{"urls": [coturn.url], "secret": coturn.secret}],
        "ice.transport_policy": "relay",
        "ice.turn_credential_ttl": 3600,
    }
    async with running_server(tmp_path / "data", **overrides) as server:
        started = time.time()
        doctor, patient = await meet(server, open_page)

        await media_both_ways(doctor, patient)
        await screenshot(doctor, "turn-01-practitioner-in-call-relayed")
        await screenshot(patient, "turn-02-patient-in-call-relayed")

        users = []
        for page in (doctor, patient):
            state = await wait_for(lambda p=page: _selected(p))
            print(state)
            # the browser was told to relay only, with credentials made from the secret
            assert state["policy"] == "relay"
            (ice_server,) = state["iceServers"]
            assert ice_server["urls"] == [coturn.url]
            expiry, session_id = ice_server["username"].split(":")
            assert started + 3600 - 5 <= int(expiry) <= time.time() + 3600
            assert len(session_id) == 8
            assert ice_server["credential"] and ice_server["credential"] != coturn.secret
            users.append(ice_server["username"])
            # every local candidate is a relay one, and the selected pair goes through coturn
            assert set(state["localTypes"]) == {"relay"}, state
            local, remote = state["selected"]["local"], state["selected"]["remote"]
            assert local["type"] == "relay" and local["address"] == "127.0.0.1"
            assert coturn.min_port <= local["port"] <= coturn.max_port
            assert local["url"] == coturn.url
            assert remote["address"] == "127.0.0.1" and remote["type"] == "host"  # the SFU
            assert state["selected"]["state"] == "succeeded"
        assert users[0] != users[1]  # one credential per session

        # coturn allocated relays for both sides with those usernames and let them
        # reach the SFU, a loopback peer
        log = coturn.log()
        for username in users:
            assert f"user <{username}>: incoming packet ALLOCATE processed, success" in log, log[-3000:]
            assert f"user <{username}>: incoming packet CREATE_PERMISSION processed, success" in log, log[-3000:]
        assert "peer 127.0.0.1 lifetime updated" in log, log[-3000:]
        assert "Cannot find credentials" not in log, log[-3000:]


async def _selected(page: Page) -> dict[str, Any] | None:
    state = await ice_state(page)
    return state if state and state["selected"] else None


async def test_wrong_secret_gets_no_relay_and_no_media(tmp_path: Path, open_page: Any, coturn: Coturn) -> None:
    overrides = {
        "ice.servers": [{"urls": [coturn.url], "secret": "not-" + coturn.secret}],
        "ice.transport_policy": "relay",
    }
    async with running_server(tmp_path / "data", **overrides) as server:
        doctor, patient = await meet(server, open_page)
        # coturn refuses the credentials: gathering ends with no candidate at all
        for page in (doctor, patient):
            state = await wait_for(lambda p=page: _gathered(p), timeout=8.0)
            print(state)
            assert state["policy"] == "relay"
            assert state["localTypes"] == []
            assert any(e["errorCode"] == 401 for e in state["errors"]), state["errors"]
        # and no connection forms in a bounded wait (the SFU's connect_timeout is longer)
        await asyncio.sleep(3.0)
        for page in (doctor, patient):
            state = await ice_state(page)
            assert state is not None
            assert state["iceConnectionState"] in ("new", "checking", "failed"), state
            assert state["selected"] is None and state["localTypes"] == []
            assert await frames_decoded(page) == 0
            assert await remote_colour(page) is None
        await screenshot(patient, "turn-03-patient-wrong-secret")
        # coturn refused exactly these: the credentials do not match its secret
        log = coturn.log()
        for page in (doctor, patient):
            state = await ice_state(page)
            assert state is not None
            username = state["iceServers"][0]["username"]
            assert f"Cannot find credentials of user <{username}>" in log, log[-3000:]
        assert "ALLOCATE processed, success" not in log, log[-3000:]


async def _gathered(page: Page) -> dict[str, Any] | None:
    state = await ice_state(page)
    return state if state and state["iceGatheringState"] == "complete" else None


@pytest.mark.parametrize("good_secret", [True, False])
async def test_connection_test_through_turn(tmp_path: Path, open_page: Any, coturn: Coturn, good_secret: bool) -> None:
    """The waiting room's connection test goes the call's way: relayed when the policy says so,
    and failed (ICE) when the relay refuses us."""
    secret = coturn.secret if good_secret else "not-" + coturn.secret
    overrides = {"ice.servers": [{"urls": [coturn.url], "secret": secret}], "ice.transport_policy": "relay"}
    async with running_server(tmp_path / "data", **overrides) as server:
        demo = await server.demo()
        patient = await open_page("blue")
        await patient.goto(demo["patient_link"])
        await patient.get_by_test_id("net-test").click()
        result = patient.get_by_test_id("net-test-result")
        await expect(result).to_have_attribute("data-verdict", re.compile(r"^(good|fair|poor|failed)$"), timeout=15000)
        if good_secret:
            await expect(result).to_have_attribute("data-verdict", "good")
            await expect(result.locator("dl")).to_contain_text("relais TURN")
            await screenshot(patient, "turn-04-patient-connection-test-relayed")
        else:
            await expect(result).to_have_attribute("data-verdict", "failed")
            await expect(result).to_contain_text("n'a pas pu s'établir")
            await screenshot(patient, "turn-05-patient-connection-test-failed")
        stored = (await server.clinic.get_readiness(demo["consultation_id"]))
        test = next(iter(stored.values())).test
        assert test is not None
        assert (test.verdict, test.relay, test.reason) == (("good", True, None) if good_secret else ("failed", None, "ice"))
