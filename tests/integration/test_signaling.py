"""The signaling server for real on loopback: invitations, handshake, bad input, takeover, media."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from helpers.media_peers import Peer, dominant_colour
from helpers.server import Running, running_server
from helpers.ws_client import Client, both, enter_call, negotiate

from clinic import Role
from sfu.remote import RemoteParticipant


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with running_server(tmp_path / "data", **{"ice.connect_timeout": 2.0}) as running:
        yield running


async def test_welcome_names_role_and_no_ice_server_by_default(server: Running) -> None:
    demo = await server.demo()
    client = await Client.open(demo["patient_link"], consent=False)
    welcome = await client.recv()
    assert welcome["type"] == "welcome" and welcome["role"] == "patient"
    assert welcome["consultation_id"] == demo["consultation_id"]
    assert welcome["ice_servers"] == []
    state = await client.recv()
    assert state == {"type": "state", "consultation_state": "scheduled",
                     "self": {"stage": "waiting_room"}, "peer": {"connected": False, "stage": "waiting_room",
                              "tracks": {"mic": True, "camera": True, "screen": False},
                              "readiness": None},
                     "recording": None,
                     "consent": {"teleconsultation": "pending", "version": welcome["notices"]["teleconsultation"]["version"]}}
    await client.close()


@pytest.mark.parametrize("first", [Role.PRACTITIONER, Role.PATIENT])
async def test_handshake_either_order_and_persisted(server: Running, first: Role) -> None:
    demo, doctor, patient = await both(server)
    a, b = (doctor, patient) if first is Role.PRACTITIONER else (patient, doctor)
    await b.state(connected=True)
    await a.send(type="join")
    await a.state(me="joined")
    await b.state(peer="joined", consultation="waiting")
    await b.send(type="ready")
    for c in (a, b):
        await c.state(me="in_call", peer="in_call", consultation="in_call")
    stored = await server.clinic.get_consultation(demo["consultation_id"])
    assert (stored.state.value, stored.practitioner_stage.value, stored.patient_stage.value) == ("in_call", "in_call", "in_call")
    await doctor.close()
    await patient.close()


async def test_late_arrival_sees_invitation_and_reload_keeps_place(server: Running) -> None:
    demo = await server.demo()
    doctor = await Client.open(demo["practitioner_link"])
    await doctor.send(type="join")
    await doctor.state(me="joined")
    # the patient arrives after: the invitation is in the very first state
    patient = await Client.open(demo["patient_link"])
    first = await patient.recv("state")
    assert (first["peer"]["connected"], first["peer"]["stage"]) == (True, "joined")
    # the practitioner reloads: still joined, and the patient sees them back
    await doctor.close()
    await patient.state(connected=False, peer="joined")
    doctor = await Client.open(demo["practitioner_link"])
    assert (await doctor.recv("state"))["self"]["stage"] == "joined"
    await patient.send(type="ready")
    await doctor.state(me="in_call")
    # the patient reloads in the call: back in the call
    await patient.close()
    patient = await Client.open(demo["patient_link"])
    assert (await patient.recv("state"))["self"]["stage"] == "in_call"
    await doctor.close()
    await patient.close()


async def test_state_survives_a_server_restart(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as first:
        demo = await first.demo()
        doctor = await Client.open(demo["practitioner_link"])
        await doctor.send(type="join")
        await doctor.state(me="joined")
        await doctor.close()
    async with running_server(tmp_path / "data") as second:
        patient = await Client.open(demo["patient_link"].replace(first.base_url, second.base_url))
        state = await patient.recv("state")
        assert state["peer"]["stage"] == "joined" and state["consultation_state"] == "waiting"
        await patient.close()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{not json", "bad-json"),
        ('{"type":"teleport"}', "unknown-type"),
        ('{"type":"join","x":1}', "bad-message"),
        ('{"type":"offer","sdp":"v=0"}', "out-of-order"),  # not in the call yet
        ('{"type":"hangup","id":"h1"}', "out-of-order"),
        ('{"type":"ready"}', "out-of-order"),  # nobody is waiting
    ],
)
async def test_bad_messages_get_an_error_and_the_session_keeps_working(server: Running, frame: str, code: str) -> None:
    demo = await server.demo()
    client = await Client.open(demo["patient_link"])
    await client.recv("state")
    await client.ws.send_str(frame)
    error = await client.recv("error")
    assert error["code"] == code and error["message"]
    if code == "out-of-order" and "h1" in frame:
        assert error["ref_type"] == "hangup" and error["ref_id"] == "h1"
    await client.send(type="join")
    assert (await client.state(me="joined"))["consultation_state"] == "waiting"
    await client.close()


async def test_binary_and_oversized_frames_are_refused(server: Running) -> None:
    demo = await server.demo()
    client = await Client.open(demo["patient_link"])
    await client.recv("state")
    await client.ws.send_bytes(b"\x00\x01")
    assert (await client.recv("error"))["code"] == "bad-json"
    await client.send(type="offer", sdp="x" * (server.config.limits.max_message_bytes + 10))
    assert (await client.recv("error"))["code"] == "too-large"
    await client.send(type="join")
    await client.state(me="joined")
    await client.close()


async def test_second_tab_takes_over(server: Running) -> None:
    demo = await server.demo()
    old = await Client.open(demo["patient_link"])
    await old.recv("state")
    new = await Client.open(demo["patient_link"])
    assert (await old.recv("replaced"))["reason"] == "opened-elsewhere"
    closing = await old.ws.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == 4001
    await new.recv("state")
    await new.send(type="join")
    await new.state(me="joined")
    await old.close()
    await new.close()


@pytest.mark.parametrize(("mutate", "status", "words"), [
    ("unknown", 404, "invalide"),
    ("revoked", 410, "expiré"),
    ("expired", 410, "expiré"),
])
async def test_bad_invitation_links_get_a_french_page(tmp_path: Path, mutate: str, status: int, words: str) -> None:
    async with running_server(tmp_path / "data", **{"invitations.lifetime_hours": 0.0001}) as srv:
        demo = await srv.demo()
        link = demo["patient_link"]
        if mutate == "unknown":
            link = link[:-4] + "AAAA"
        elif mutate == "revoked":
            invitation = await srv.clinic.resolve_invitation(link.rsplit("/", 1)[1])
            await srv.clinic.revoke_invitation(invitation.id)
        else:
            await asyncio.sleep(0.5)  # past the 0.36 s lifetime
        async with aiohttp.ClientSession() as http:
            for url in (link, link + "/ws"):
                async with http.get(url) as resp:
                    body = await resp.text()
                    assert resp.status == status
                    assert words in body and "Traceback" not in body
                    assert resp.headers["Content-Type"].startswith("text/html")


async def test_media_crosses_and_a_reload_in_call_gets_it_back(server: Running) -> None:
    demo, doctor, patient = await both(server)
    await enter_call(doctor, patient)
    red, blue = Peer("red"), Peer("blue")
    blue2 = Peer("blue")
    try:
        await negotiate(doctor, red)
        await negotiate(patient, blue)
        assert (await doctor.recv("media"))["state"] == "connected"
        assert dominant_colour(await red.wait_video()) == "blue"
        assert dominant_colour(await blue.wait_video()) == "red"

        # the patient reloads: new socket, new peer connection, nothing done on the other side
        await patient.close()
        await blue.close()
        patient = await Client.open(demo["patient_link"])
        assert (await patient.recv("state"))["self"]["stage"] == "in_call"
        red.video_frames.clear()
        await negotiate(patient, blue2)
        assert dominant_colour(await blue2.wait_video()) == "red"
        assert dominant_colour(await red.wait_video()) == "blue"  # the same consumer, rebound
        hub = server.hubs.find(demo["consultation_id"])
        assert hub is not None and hub.room is not None and len(hub.room.participants) == 2
    finally:
        await asyncio.gather(red.close(), blue.close(), blue2.close())
        await doctor.close()
        await patient.close()


async def test_practitioner_hangup_ends_for_both_and_frees_the_room(server: Running) -> None:
    demo, doctor, patient = await both(server)
    await enter_call(doctor, patient)
    red = Peer("red")
    try:
        await negotiate(doctor, red)
        hub = server.hubs.find(demo["consultation_id"])
        assert hub is not None and hub.room is not None
        await doctor.send(type="hangup")
        await patient.state(me="ended", consultation="ended")
        assert hub.room is None and not hub.participants
        await patient.send(type="join")
        assert "ended" in (await patient.recv("error"))["message"]
    finally:
        await red.close()
        await doctor.close()
        await patient.close()
    stored = await server.clinic.get_consultation(demo["consultation_id"])
    assert stored.state.value == "ended"
    assert server.hubs.find(demo["consultation_id"]) is None  # nobody connected: forgotten


async def test_a_peer_that_never_completes_ice_is_dropped(server: Running) -> None:
    demo, doctor, patient = await both(server)
    await enter_call(doctor, patient)
    ghost = Peer("red")
    try:
        await doctor.send(type="offer", sdp=await ghost.offer())
        await doctor.recv("answer")  # never applied: ICE cannot complete
        assert (await doctor.recv("media", timeout=10))["state"] == "timeout"
        hub = server.hubs.find(demo["consultation_id"])
        participant = hub.participants[Role.PRACTITIONER]
        if isinstance(participant, RemoteParticipant):  # [sfu] workers > 1: its media lived in a worker
            stats = await participant.stats()
            assert stats is not None and stats["media_state"] == "timeout" and not stats["up"], stats
        else:
            assert participant.pc is None and not participant.producers
    finally:
        await ghost.close()
        await doctor.close()
        await patient.close()


async def test_garbage_sdp_gets_a_media_error(server: Running) -> None:
    _, doctor, patient = await both(server)
    await enter_call(doctor, patient)
    await doctor.send(type="offer", sdp="v=0\r\nthis is not sdp\r\n")
    error = await doctor.recv("error")
    assert error["code"] == "media-error" and error["ref_type"] == "offer"
    await doctor.close()
    await patient.close()


async def test_pages_carry_security_headers_and_unknown_paths_get_a_plain_404(server: Running) -> None:
    demo = await server.demo()
    async with aiohttp.ClientSession() as http:
        async with http.get(demo["patient_link"]) as resp:
            assert resp.status == 200
            assert resp.headers["X-Content-Type-Options"] == "nosniff"
            assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
            assert resp.headers["Referrer-Policy"] == "no-referrer"  # the link's token never leaks
            assert resp.headers["Cache-Control"] == "no-store"
        async with http.get(server.base_url + "/static/nope.js") as resp:
            assert resp.status == 404 and "Page introuvable" in await resp.text()
        async with http.get(server.base_url + "/healthz") as resp:
            assert (await resp.json()) == {"status": "ok"}


@pytest.mark.parametrize("path", ["/static/../signaling/config.py", "/static/%2e%2e/pyproject.toml", "/static/__init__.py", "/static/js"])
async def test_static_files_stay_inside_the_web_folder(server: Running, path: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(server.base_url + path) as resp:
            assert resp.status == 404
            assert "import" not in await resp.text()


async def test_two_offers_at_once_leave_one_working_connection(server: Running) -> None:
    _, doctor, patient = await both(server)
    await enter_call(doctor, patient)
    first, second = Peer("red"), Peer("red")
    try:
        await doctor.send(type="offer", sdp=await first.offer())
        await doctor.send(type="offer", sdp=await second.offer())
        replies = [await doctor.recv("answer") for _ in range(2)]
        assert all(r["sdp"].startswith("v=0") for r in replies)
        await second.accept(replies[1]["sdp"])
        assert (await doctor.recv("media"))["state"] == "connected"
    finally:
        await asyncio.gather(first.close(), second.close())
        await doctor.close()
        await patient.close()


async def test_mute_and_screen_share_state_reach_the_other_side(server: Running) -> None:
    _, doctor, patient = await both(server)
    await patient.state(connected=True)
    await doctor.send(type="tracks", mic=False, camera=True, screen=True)
    seen = await patient.state(connected=True)
    while seen["peer"]["tracks"]["mic"]:
        seen = await patient.recv("state")
    assert seen["peer"]["tracks"] == {"mic": False, "camera": True, "screen": True}
    await doctor.send(type="tracks", mic="no", camera=True, screen=False)
    assert (await doctor.recv("error"))["message"] == "'tracks.mic' must be a bool"
    # a side that leaves counts as unmuted again for whoever comes next
    await doctor.close()
    while True:
        s = await patient.recv("state")
        if not s["peer"]["connected"]:
            break
    assert s["peer"]["tracks"] == {"mic": True, "camera": True, "screen": False}
    await patient.close()


async def test_stats_metrics_and_quality_during_a_call(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"stats.interval": 0.5}) as srv:
        _, doctor, patient = await both(srv)
        await enter_call(doctor, patient)
        red, blue = Peer("red"), Peer("blue")
        try:
            await negotiate(doctor, red)
            await negotiate(patient, blue)
            await red.wait_video()
            await blue.wait_video()
            # each browser is told its own connection quality and its correspondent's
            q = await doctor.recv("quality")
            while q["self"] != "good" or q["peer"] != "good":
                q = await doctor.recv("quality")
            await asyncio.sleep(1.2)  # two collections: rates need a previous sample
            async with aiohttp.ClientSession() as http:
                async with http.get(srv.operator_url + "/stats") as resp:
                    snapshot = await resp.json()
                async with http.get(srv.operator_url + "/metrics") as resp:
                    metrics = await resp.text()
            (room,) = snapshot["rooms"]
            assert {p["role"] for p in room["participants"]} == {"practitioner", "patient"}
            for p in room["participants"]:
                # packets of the media stream itself (not its retransmission stream)
                assert p["up"]["camera"]["packets"] >= p["up"]["camera"]["frames"] > 0
                assert p["down"]["camera"]["packets"] > 0 and p["down"]["mic"]["bytes"] > 0
                assert p["up_kbps"] > 0 and p["quality"] == "good" and p["loss"] < 0.02
            assert "teleconsult_rooms 1.0" in metrics
            assert 'teleconsult_up_frames_total{role="patient",room="' in metrics
            # histograms fed by each collection; process figures from prometheus-client
            assert 'teleconsult_loss_ratio_count{role="practitioner"}' in metrics
            assert "# TYPE teleconsult_rtt_seconds histogram" in metrics
            assert 'teleconsult_jitter_seconds_bucket{kind="video",le="0.01",role="patient"}' in metrics
            assert "process_resident_memory_bytes" in metrics and "python_gc_collections_total" in metrics
            assert "participant=" not in metrics  # no per-connection series
            assert "patient@" not in json.dumps(snapshot)  # ids and counters only
        finally:
            await asyncio.gather(red.close(), blue.close())
            await doctor.close()
            await patient.close()


async def test_operator_endpoints_are_not_on_the_public_port(server: Running) -> None:
    async with aiohttp.ClientSession() as http:
        for path in ("/stats", "/metrics", "/mail/status", "/readyz"):
            async with http.get(server.base_url + path) as resp:
                assert resp.status == 404, path
            async with http.get(server.operator_url + path) as resp:
                assert resp.status == 200, path


async def test_readiness_is_stored_shown_to_the_other_side_and_survives(server: Running) -> None:
    demo, doctor, patient = await both(server)
    test = {"verdict": "good", "reason": None, "rtt_ms": 40.2, "jitter_ms": 1.5, "loss_pct": 0,
            "up_kbps": 990, "down_kbps": 1000, "relay": None}
    await patient.send(type="readiness", mic="on", camera="off", test=test)
    seen = await doctor.state()
    while seen["peer"]["readiness"] is None:
        seen = await doctor.state()
    assert seen["peer"]["readiness"]["camera"] == "off"
    assert seen["peer"]["readiness"]["test"]["rtt_ms"] == 40.2
    # devices alone keep the last test
    await patient.send(type="readiness", mic="off", camera="off", test=None)
    while (seen := await doctor.state())["peer"]["readiness"]["mic"] != "off":
        pass
    assert seen["peer"]["readiness"]["test"]["verdict"] == "good"
    # a reload of the practitioner (and a fresh hub) reads it from the database
    await doctor.close()
    await patient.close()
    doctor = await Client.open(demo["practitioner_link"])
    first = await doctor.recv("state")
    assert first["peer"]["readiness"]["test"]["up_kbps"] == 990
    stored = await server.clinic.get_readiness(demo["consultation_id"])
    assert stored[Role.PATIENT].mic == "off"
    await doctor.close()


@pytest.mark.parametrize(("fields", "names"), [
    ({"mic": "loud", "camera": "on", "test": None}, "mic"),
    ({"mic": "on", "camera": "on", "test": {"verdict": "great", "reason": None, "rtt_ms": None, "jitter_ms": None,
                                            "loss_pct": None, "up_kbps": None, "down_kbps": None, "relay": None}}, "verdict"),
    ({"mic": "on", "camera": "on", "test": {"verdict": "good"}}, "reason"),
    ({"mic": "on", "camera": "on", "test": {"verdict": "good", "reason": None, "rtt_ms": "fast", "jitter_ms": None,
                                            "loss_pct": None, "up_kbps": None, "down_kbps": None, "relay": None}}, "rtt_ms"),
])
async def test_bad_readiness_is_refused(server: Running, fields: dict[str, Any], names: str) -> None:
    demo = await server.demo()
    patient = await Client.open(demo["patient_link"])
    try:
        await patient.send(type="readiness", **fields)
        error = await patient.recv("error")
        assert error["code"] == "bad-message" and names in error["message"], error
        assert await server.clinic.get_readiness(demo["consultation_id"]) == {}
    finally:
        await patient.close()
