"""A whole consultation between two real Chromium browsers through our SFU."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from helpers.call_page import (
    INBOUND_STATS,
    accept_notice,
    frames_decoded,
    in_call,
    more_frames,
    remote_colour,
    screen_frames,
    screenshot,
    shows,
    wait_for,
)
from helpers.server import running_server
from playwright.async_api import Page, expect

from sfu.remote import RemoteParticipant
from sfu.stats import participant_stats


async def test_two_browsers_meet_and_see_each_other(tmp_path: Path, open_page: Any) -> None:
    # the default [sfu] workers ("auto"): on two cores or more the call's media lives in a worker process
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        doctor: Page = await open_page("red")
        patient: Page = await open_page("blue")
        await doctor.goto(demo["practitioner_link"])
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)

        # both in the waiting room, each with a live preview
        for page in (doctor, patient):
            await expect(page.get_by_test_id("join")).to_be_visible()
            await wait_for(lambda p=page: p.evaluate("() => document.querySelector('[data-testid=local-preview]').videoWidth > 0"))
        await expect(doctor.get_by_test_id("peer-status")).to_have_attribute("data-state", "waiting-room")
        await screenshot(doctor, "01-practitioner-waiting-room")

        # the practitioner enters first: the patient is invited
        await doctor.get_by_test_id("join").click()
        await expect(doctor.get_by_test_id("join")).to_be_disabled()
        await expect(patient.get_by_test_id("peer-status")).to_have_attribute("data-state", "waiting-for-you")
        await expect(patient.get_by_test_id("ready")).to_be_visible()
        await screenshot(patient, "02-patient-invited")

        await patient.get_by_test_id("ready").click()
        ready_at = time.monotonic()
        for page in (doctor, patient):
            await expect(page.get_by_test_id("remote-video")).to_be_visible()

        # media crossed the SFU: each side decodes frames of the other's colour
        await wait_for(lambda: shows(doctor, "blue"))
        first_frame_ms = (time.monotonic() - ready_at) * 1000
        await wait_for(lambda: shows(patient, "red"))
        n_doctor = await wait_for(lambda: frames_decoded(doctor))
        n_patient = await wait_for(lambda: frames_decoded(patient))
        await asyncio.sleep(1.0)
        assert await frames_decoded(doctor) > n_doctor and await frames_decoded(patient) > n_patient
        # and hears: audio packets arrive on both sides
        for page in (doctor, patient):
            stats = await page.evaluate(INBOUND_STATS)
            assert stats["audio"] > 0, stats
        # the SFU's measure of each side's connection is shown in the call
        await expect(doctor.get_by_test_id("connection-quality")).to_have_attribute("data-level", "good", timeout=15000)
        await expect(patient.get_by_test_id("connection-quality")).to_have_attribute("data-peer-level", "good", timeout=15000)
        await screenshot(doctor, "03-practitioner-in-call")
        await screenshot(patient, "04-patient-in-call")
        print(f"ready -> first remote frame: {first_frame_ms:.0f} ms")

        # the server forwarded RTP packets to each side (its media worker's counters, or this process's);
        # that it decodes and encodes nothing: test_call_controls.py, in one process where a spy can see it
        (hub,) = server.hubs._hubs.values()
        for participant in hub.participants.values():
            stats = (await participant.stats() if isinstance(participant, RemoteParticipant)
                     else await participant_stats(participant))
            assert stats is not None, participant
            for source in ("mic", "camera"):
                assert stats["down"][source]["packets"] > 0, (participant, source, stats["down"])
        # the consultation state is persisted
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        assert consultation.state.value == "in_call"


async def test_patient_first_then_reload_in_call_then_hangup(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient: Page = await open_page("blue")
        await patient.set_viewport_size({"width": 390, "height": 780})  # a phone
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        await expect(patient.get_by_test_id("peer-status")).to_have_attribute("data-state", "absent")
        await patient.get_by_test_id("join").click()
        await expect(patient.get_by_test_id("peer-status")).to_have_attribute("data-state", "invited")

        # the practitioner arrives later and sees the invitation at once
        doctor: Page = await open_page("red")
        await doctor.goto(demo["practitioner_link"])
        await expect(doctor.get_by_test_id("ready")).to_be_visible()
        await expect(doctor.get_by_test_id("join")).to_be_hidden()
        await doctor.get_by_test_id("ready").click()
        await wait_for(lambda: shows(patient, "red"))
        await wait_for(lambda: shows(doctor, "blue"))
        await screenshot(patient, "05-patient-in-call-phone")

        # the patient reloads: back in the call, pictures both ways, the practitioner did nothing
        await patient.reload()
        await expect(patient.get_by_test_id("remote-video")).to_be_visible()
        await wait_for(lambda: shows(patient, "red"))
        before = await frames_decoded(doctor)
        await wait_for(lambda: more_frames(doctor, before))
        assert await remote_colour(doctor) == "blue"

        # the practitioner hangs up: the call ends for both
        await doctor.get_by_test_id("hangup").click()
        await expect(patient.get_by_test_id("ended")).to_be_visible()
        await expect(doctor.get_by_test_id("ended")).to_be_visible()
        await screenshot(patient, "06-patient-ended-phone")
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        assert consultation.state.value == "ended"


async def test_second_tab_takes_over_and_the_first_is_told(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        first: Page = await open_page("blue")
        await first.goto(demo["patient_link"])
        await accept_notice(first)
        await expect(first.get_by_test_id("join")).to_be_visible()
        second = await first.context.new_page()
        await second.goto(demo["patient_link"])
        await expect(second.get_by_test_id("join")).to_be_visible()
        await expect(first.get_by_test_id("replaced")).to_be_visible()
        await expect(first.get_by_test_id("join")).to_be_hidden()
        # the first tab does not fight back by reconnecting
        await asyncio.sleep(1.5)
        await expect(second.get_by_test_id("join")).to_be_visible()
        await expect(first.get_by_test_id("replaced")).to_be_visible()
        await screenshot(first, "07-old-tab-replaced")


async def test_bad_link_shows_a_french_page(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        page: Page = await open_page("blue")
        response = await page.goto(server.base_url + "/c/not-a-real-token")
        assert response is not None and response.status == 404
        await expect(page.get_by_test_id("error-page")).to_contain_text("Lien d'invitation invalide")


async def test_screen_share_and_mute_reach_the_other_side(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)

        # mute: the other side sees it; unmute: it goes away
        await expect(doctor.get_by_test_id("remote-muted")).to_be_hidden()
        await patient.get_by_test_id("mic-toggle").click()
        await expect(patient.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")
        await expect(doctor.get_by_test_id("remote-muted")).to_be_visible()
        await patient.get_by_test_id("mic-toggle").click()
        await expect(doctor.get_by_test_id("remote-muted")).to_be_hidden()

        # screen share: an extra picture at the screen's size; the camera keeps flowing
        await expect(doctor.get_by_test_id("remote-screen")).to_be_hidden()
        await patient.get_by_test_id("screen-toggle").click()
        await expect(patient.get_by_test_id("screen-toggle")).to_have_attribute("aria-pressed", "true")
        await expect(doctor.get_by_test_id("remote-screen")).to_be_visible()
        size = await wait_for(lambda: doctor.evaluate(
            "() => { const v = document.querySelector('[data-testid=remote-screen]'); return v.videoWidth > 0 && [v.videoWidth, v.videoHeight]; }"))
        assert size[0] >= 640 and size[0] > size[1], size  # a landscape screen, not the 320x240 camera
        assert await wait_for(lambda: screen_frames(doctor)) > 0
        before = await frames_decoded(doctor)
        await wait_for(lambda: more_frames(doctor, before))
        assert await remote_colour(doctor) == "blue"  # the camera is still there
        await screenshot(doctor, "08-practitioner-sees-shared-screen")

        # stop sharing: the screen goes, the camera stays
        await patient.get_by_test_id("screen-toggle").click()
        await expect(doctor.get_by_test_id("remote-screen")).to_be_hidden()
        before = await frames_decoded(doctor)
        await wait_for(lambda: more_frames(doctor, before))
        assert await remote_colour(doctor) == "blue"


