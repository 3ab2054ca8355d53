"""The media port under hostile datagrams, during a real call through the server (issue 17).

A real server on loopback, two aiortc peers in the call through the WebSocket
protocol; datagrams are sent to the server's ports from a stranger's socket and
from the leg's own socket (a spoofed source).  Media must keep flowing both ways,
and the log must stay short: no traceback, at most one line per kind of drop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from clinic import Role
from helpers.fuzz_datagrams import Sprayer, datagrams, leg_socket, rtp, server_ports, stun_bad
from helpers.media_peers import Peer, dominant_colour
from helpers.server import Running, running_server
from helpers.ws_client import Client, both, enter_call, negotiate
from sfu.udp_guard import KINDS


@dataclass
class Call:
    server: Running
    demo: dict[str, Any]
    doctor: Client
    patient: Client
    red: Peer
    blue: Peer

    def participant(self, role: Role) -> Any:
        hub = self.server.hubs.find(self.demo["consultation_id"])
        return hub.participants[role]

    async def stats(self) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.server.operator_url + "/stats") as resp:
                data: dict[str, Any] = await resp.json()
                return data

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.get(self.server.operator_url + "/metrics") as resp:
                return await resp.text()


@pytest.fixture
async def call(tmp_path: Path) -> AsyncIterator[Call]:
    # one process (workers = 1): the tests reach into the call's peer connections and sockets
    async with running_server(tmp_path / "data", **{"stats.interval": 0.5, "sfu.workers": 1}) as server:
        demo, doctor, patient = await both(server)
        red, blue = Peer("red"), Peer("blue")
        try:
            await enter_call(doctor, patient)
            await negotiate(doctor, red)
            await negotiate(patient, blue)
            assert (await doctor.recv("media"))["state"] == "connected"
            assert dominant_colour(await red.wait_video()) == "blue"
            assert dominant_colour(await blue.wait_video()) == "red"
            yield Call(server, demo, doctor, patient, red, blue)
        finally:
            await asyncio.gather(red.close(), blue.close())
            await doctor.close()
            await patient.close()


async def still_flowing(*peers: Peer, seconds: float = 1.5) -> None:
    """Each peer decodes new video and audio frames over the next `seconds`."""
    before = [(len(p.video_pts), p.audio_frames) for p in peers]
    await asyncio.sleep(seconds)
    for peer, (video, audio) in zip(peers, before):
        assert len(peer.video_pts) > video + 5, "video stopped"
        assert peer.audio_frames > audio + 10, "audio stopped"


def assert_short(records: list[logging.LogRecord], most: int) -> None:
    """No traceback, at most `most` lines, and no kind of drop logged twice."""
    lines = [r.getMessage() for r in records]
    assert not [line[:200] for r, line in zip(records, lines) if r.exc_info or "Traceback" in line]
    assert len(lines) <= most, [line[:120] for line in lines]
    drops = [line.split(":")[0] for line in lines if line.startswith("udp-")]
    assert len(drops) == len(set(drops)), drops


async def test_an_empty_datagram_does_not_end_the_call(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    sprayer = Sprayer()
    try:
        for target in server_ports(call.participant(Role.PRACTITIONER)):
            sprayer.sock.sendto(b"", target)
        await still_flowing(call.red, call.blue)
    finally:
        sprayer.close()
    assert call.participant(Role.PRACTITIONER).media_state == "connected"
    assert_short(caplog.records, most=2)
    assert (await call.stats())["udp_dropped"]["empty"] >= 1


async def test_malformed_stun_and_overlong_rtp_write_no_traceback(call: Call, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rng = random.Random(17)
    targets = server_ports(call.participant(Role.PATIENT))
    leg = leg_socket(call.blue.pc)
    sprayer = Sprayer()
    try:
        caplog.clear()
        # STUN with bad attributes from a stranger; RTP-looking packets longer than
        # pylibsrtp's buffer from the leg's own address (they reach SRTP unprotect)
        for _ in range(100):
            for target in targets:
                sprayer.sock.sendto(stun_bad(rng), target)
            leg[0].sendto(b"\x80\x60" + rtp(rng)[2:12] + bytes(1600), leg[1])
            await asyncio.sleep(0.002)
        await still_flowing(call.red, call.blue)
    finally:
        sprayer.close()
    assert_short(caplog.records, most=len(KINDS))
    dropped = (await call.stats())["udp_dropped"]
    assert dropped["too-long"] >= 100 and dropped["malformed-stun"] + dropped["truncated"] >= 50, dropped
    # past the guard too: the SRTP path drops an over-long packet instead of raising
    dtls = call.participant(Role.PATIENT).pc.getTransceivers()[0].receiver.transport
    dtls.transport._connection.data_received(b"\x80\x60" + bytes(2000), 1)


async def test_thousands_of_fuzzed_datagrams_leave_media_flowing_and_the_log_short(
        call: Call, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    rng = random.Random(1717)
    targets = server_ports(call.participant(Role.PRACTITIONER)) + server_ports(call.participant(Role.PATIENT))
    sprayer = Sprayer()
    sent: dict[str, int] = {}
    try:
        caplog.clear()
        await sprayer.spray(targets, datagrams(rng, 1500), counts=sent)
        await sprayer.spray(targets, datagrams(rng, 1500), leg=leg_socket(call.red.pc), counts=sent)
        await still_flowing(call.red, call.blue, seconds=2.0)
    finally:
        sprayer.close()
    assert sprayer.sent >= 3000 and len(sent) >= 7, sent
    assert_short(caplog.records, most=len(KINDS) + 2)
    stats = await call.stats()
    for room in stats["rooms"]:
        assert {p["media_state"] for p in room["participants"]} == {"connected"}
    dropped = stats["udp_dropped"]
    assert sum(dropped.values()) > 2000, dropped
    assert {k for k, v in dropped.items() if v} >= {"empty", "too-long", "truncated", "malformed-stun",
                                                     "wrong-source"}, dropped
    assert 'teleconsult_udp_dropped_total{kind="empty"}' in await call.metrics()


async def test_a_leg_aiortc_closes_is_reported_and_a_new_offer_brings_media_back(call: Call) -> None:
    participant = call.participant(Role.PRACTITIONER)
    dtls = participant.pc.getTransceivers()[0].receiver.transport
    await dtls.stop()  # what aiortc does on its own when its DTLS session ends
    assert (await call.doctor.recv("media"))["state"] == "failed"
    told = time.time()
    for _ in range(40):  # a snapshot collected after the failure
        stats = await call.stats()
        if (stats["collected_at"] or 0) > told:
            break
        await asyncio.sleep(0.1)
    states = {p["role"]: p["media_state"] for room in stats["rooms"] for p in room["participants"]}
    assert states.get("practitioner") == "failed", stats
    # the browser answers "failed" with a new offer (web/js/main.js): so does this peer
    red2 = Peer("red")
    try:
        call.blue.video_frames.clear()
        await negotiate(call.doctor, red2)
        assert (await call.doctor.recv("media"))["state"] == "connected"
        assert dominant_colour(await red2.wait_video()) == "blue"
        assert dominant_colour(await call.blue.wait_video()) == "red"
        await still_flowing(red2, call.blue)
    finally:
        await red2.close()
