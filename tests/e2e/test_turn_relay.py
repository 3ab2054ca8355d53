"""Media relayed through a real TURN server (Debian's coturn) with time-limited credentials.

coturn runs on 127.0.0.1 with the TURN REST shared secret (`use-auth-secret`); our
server hands each browser a username/credential made from the same secret and
tells it `iceTransportPolicy: "relay"`, so every media packet goes through coturn.
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import pytest
from helpers.call_page import frames_decoded, remote_colour, screenshot, wait_for
from helpers.server import running_server
from helpers.turn import Coturn, ice_state, media_both_ways, meet, selected_pair
from playwright.async_api import Page, expect


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
            state = await wait_for(lambda p=page: selected_pair(p))
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
