"""coturn for the tests, and two browsers meeting through whatever path ICE finds."""

from __future__ import annotations

import asyncio
import os
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
from playwright.async_api import Page, expect

from helpers.call_page import accept_notice, frames_decoded, shows, wait_for
from helpers.server import free_port

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
    port = free_port()  # free for UDP and TCP
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


# what the browser's peer connection reports about ICE: its configuration, its
# candidates and the pair it selected
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


async def selected_pair(page: Page) -> dict[str, Any] | None:
    state = await ice_state(page)
    return state if state and state["selected"] else None
