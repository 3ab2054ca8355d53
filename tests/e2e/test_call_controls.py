"""Every in-call control of PRODUCT.md §3 (but chat, recording, whiteboard), checked on the OTHER side."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from helpers.call_page import (
    INBOUND_STATS,
    accept_notice,
    frames_decoded,
    in_call,
    more_frames,
    screen_frames,
    screenshot,
    shows,
    wait_for,
)
from helpers.server import running_server
from playwright.async_api import Page, expect

from clinic import Role


async def _audio(page: Page) -> tuple[int, float]:
    """(audio packets received, total audio energy) of the correspondent's sound."""
    stats = await page.evaluate(INBOUND_STATS)
    return (int(stats["audio"]), float(stats["audioEnergy"])) if stats else (0, 0.0)


async def _energy_growth(page: Page, seconds: float) -> tuple[int, float]:
    """Packets and energy received over `seconds`."""
    p0, e0 = await _audio(page)
    await asyncio.sleep(seconds)
    p1, e1 = await _audio(page)
    return p1 - p0, e1 - e0


async def test_mute_shows_a_badge_and_the_sound_goes_silent(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        _, live = await _energy_growth(doctor, 1.5)
        assert live > 0, "the practitioner should hear the patient's fake microphone"

        await patient.get_by_test_id("mic-toggle").click()
        await expect(patient.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")
        await expect(doctor.get_by_test_id("remote-muted")).to_be_visible()
        await asyncio.sleep(0.5)  # what was already in flight plays out
        packets, muted = await _energy_growth(doctor, 1.5)
        print(f"audio energy over 1.5 s: live {live:.6f}, muted {muted:.6f} ({packets} packets)")
        assert muted < live * 0.01, (live, muted)  # silence, not just a badge

        await patient.get_by_test_id("mic-toggle").click()
        await expect(doctor.get_by_test_id("remote-muted")).to_be_hidden()
        await wait_for(lambda: _grows(doctor), timeout=10)  # the sound is back


async def _grows(page: Page) -> bool:
    _, energy = await _energy_growth(page, 0.5)
    return energy > 0


async def test_camera_off_shows_the_role_instead_of_a_frozen_picture(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await expect(doctor.get_by_test_id("remote-placeholder")).to_be_hidden()

        await patient.get_by_test_id("cam-toggle").click()
        await expect(patient.get_by_test_id("cam-toggle")).to_have_attribute("aria-pressed", "false")
        placeholder = doctor.get_by_test_id("remote-placeholder")
        await expect(placeholder).to_be_visible()
        await expect(placeholder).to_contain_text("Patient")
        await expect(placeholder).to_contain_text("P")
        await expect(doctor.get_by_test_id("remote-video")).to_be_hidden()
        await screenshot(doctor, "20-practitioner-sees-patient-camera-off")

        # the other way round, in English: the patient sees the practitioner's role
        await patient.get_by_test_id("lang-select").select_option("en")
        await doctor.get_by_test_id("cam-toggle").click()
        await expect(patient.get_by_test_id("remote-placeholder")).to_contain_text("Practitioner")
        await expect(patient.get_by_test_id("remote-placeholder")).to_contain_text("camera off")

        await patient.get_by_test_id("cam-toggle").click()
        await expect(placeholder).to_be_hidden()
        await expect(doctor.get_by_test_id("remote-video")).to_be_visible()
        await wait_for(lambda: shows(doctor, "blue"))


async def test_the_browsers_stop_sharing_bar_ends_the_share_on_the_other_side(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await patient.get_by_test_id("screen-toggle").click()
        await expect(doctor.get_by_test_id("remote-screen")).to_be_visible()
        await wait_for(lambda: screen_frames(doctor))

        # what the browser's own "Stop sharing" bar does: the capture ends and says so
        await patient.evaluate("""() => {
          const track = window.__teleconsult.screen;
          track.stop();
          track.dispatchEvent(new Event('ended'));
        }""")
        await expect(doctor.get_by_test_id("remote-screen")).to_be_hidden()
        await expect(patient.get_by_test_id("screen-toggle")).to_have_attribute("aria-pressed", "false")
        before = await frames_decoded(doctor)
        await wait_for(lambda: more_frames(doctor, before))  # the camera goes on
        await wait_for(lambda: shows(doctor, "blue"))


SPY_REPLACE = """() => {
  const call = window.__teleconsult.call;
  const original = call.replaceTrack.bind(call);
  window.__replaced = [];
  call.replaceTrack = async (track) => { window.__replaced.push(track.kind); return original(track); };
}"""


async def test_changing_sources_in_the_call_keeps_the_pictures_and_sound_coming(tmp_path: Path, open_page: Any,
                                                                               codec_spy: Counter[str]) -> None:
    # one process (workers = 1): the peer connection is looked at, and the codec spy sees the media path
    async with running_server(tmp_path / "data", **{"sfu.workers": 1}) as server:
        doctor, patient = await in_call(server, open_page)
        (hub,) = server.hubs._hubs.values()
        pc_before = hub.participants[Role.PATIENT].pc
        await patient.evaluate(SPY_REPLACE)

        await patient.get_by_test_id("devices").click()
        dialog = patient.get_by_test_id("devices-dialog")
        await expect(dialog).to_be_visible()
        # the waiting room's own lists, moved: one of each on the page
        mic_select = dialog.get_by_test_id("mic-select")
        cam_select = dialog.get_by_test_id("cam-select")
        await expect(mic_select).to_be_visible()
        await expect(cam_select).to_be_visible()
        assert await patient.get_by_test_id("mic-select").count() == 1
        assert await patient.get_by_test_id("cam-select").count() == 1
        await screenshot(patient, "21-patient-sources-dialog")

        # Chromium's fake devices: three microphones, one camera
        mics = await mic_select.evaluate("(s) => [...s.options].map((o) => o.value)")
        cams = await cam_select.evaluate("(s) => [...s.options].map((o) => o.value)")
        print("fake devices:", len(mics), "microphones,", len(cams), "cameras")
        current_mic = await mic_select.input_value()
        other_mic = next((m for m in mics if m != current_mic), current_mic)
        await mic_select.select_option(other_mic)
        await wait_for(lambda: patient.evaluate("() => window.__replaced.includes('audio') && window.__replaced.includes('video')"))
        await expect(mic_select).to_have_value(other_mic)
        await cam_select.select_option(cams[-1])  # the only camera: the switch path runs all the same
        await wait_for(lambda: patient.evaluate("() => window.__replaced.filter((k) => k === 'video').length >= 2"))

        # the call never dropped: same peer connection, frames and sound keep arriving
        assert hub.participants[Role.PATIENT].pc is pc_before
        before = await frames_decoded(doctor)
        await wait_for(lambda: more_frames(doctor, before))
        await wait_for(lambda: shows(doctor, "blue"))
        packets, energy = await _energy_growth(doctor, 1.0)
        assert packets > 0 and energy > 0, (packets, energy)

        await patient.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        # the server forwarded RTP packets: it made no decoder, encoded and packed nothing
        for participant in hub.participants.values():
            for source in ("mic", "camera"):
                egress = participant.consumers[source].egress
                assert egress is not None and egress.packets > 0, (participant, source)
        assert codec_spy["pack-video"] == 0 and codec_spy["pack-audio"] == 0, codec_spy
        assert codec_spy["decoder"] == 0, codec_spy
        assert codec_spy["get_decoder"] == 0, codec_spy
        assert codec_spy["encode"] == 0, codec_spy


PIP_WINDOW = "() => Boolean(window.documentPictureInPicture && documentPictureInPicture.window)"


async def _pip_page(page: Page) -> Page:
    """The Document PiP window, as Playwright sees it (a page of the same context)."""
    async def find() -> Page | None:
        for p in page.context.pages:
            if p is not page and await p.get_by_test_id("pip-video").count():
                return p
        return None
    found: Page = await wait_for(find, timeout=10)
    return found


async def test_picture_in_picture_floats_the_video_with_working_buttons(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)

        # Document PiP (the patient's Chromium): the video and the buttons float
        await patient.get_by_test_id("pip-toggle").click()
        await wait_for(lambda: patient.evaluate(PIP_WINDOW), timeout=10)
        await expect(patient.get_by_test_id("pip-toggle")).to_have_attribute("aria-pressed", "true")
        pip = await _pip_page(patient)
        await wait_for(lambda: pip.evaluate("() => document.querySelector('[data-testid=pip-video]').videoWidth > 0"))
        assert await patient.get_by_test_id("mic-toggle").count() == 0  # moved, not copied
        await pip.get_by_test_id("mic-toggle").click()
        await expect(doctor.get_by_test_id("remote-muted")).to_be_visible()
        await pip.get_by_test_id("cam-toggle").click()
        await expect(doctor.get_by_test_id("remote-placeholder")).to_be_visible()
        await screenshot(pip, "29-patient-pip-window")

        # plain PiP where Document PiP is missing (the practitioner's page pretends so)
        await doctor.evaluate("() => Object.defineProperty(window, 'documentPictureInPicture', {value: undefined, configurable: true})")
        await doctor.get_by_test_id("pip-toggle").click()
        await wait_for(lambda: doctor.evaluate("() => document.pictureInPictureElement?.dataset.testid === 'remote-video'"), timeout=10)
        await expect(doctor.get_by_test_id("pip-toggle")).to_have_attribute("aria-pressed", "true")
        await doctor.get_by_test_id("pip-toggle").click()
        await wait_for(lambda: doctor.evaluate("() => document.pictureInPictureElement === null"), timeout=10)
        await expect(doctor.get_by_test_id("pip-toggle")).to_have_attribute("aria-pressed", "false")

        # hang-up from the floating window: it closes and the buttons come home
        await pip.get_by_test_id("hangup").click()
        await wait_for(lambda: _not(patient.evaluate(PIP_WINDOW)), timeout=10)
        await expect(patient.get_by_test_id("join")).to_be_visible()
        await expect(patient.get_by_test_id("mic-toggle")).to_have_count(1)
        await expect(patient.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")

        # the call ending closes it too
        await patient.get_by_test_id("join").click()
        await expect(patient.get_by_test_id("pip-toggle")).to_be_visible()
        await patient.get_by_test_id("pip-toggle").click()
        await wait_for(lambda: patient.evaluate(PIP_WINDOW), timeout=10)
        await doctor.get_by_test_id("hangup").click()
        await expect(patient.get_by_test_id("ended")).to_be_visible()
        await wait_for(lambda: _not(patient.evaluate(PIP_WINDOW)), timeout=10)


async def _not(value: Any) -> bool:
    return not await value


async def test_practitioner_hangup_ends_for_both_and_opens_the_closing_page(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        doctor_link, patient_link = doctor.url, patient.url
        await doctor.get_by_test_id("hangup").click()
        await expect(patient.get_by_test_id("ended")).to_be_visible()
        await doctor.wait_for_url(doctor_link + "/closing", timeout=10000)
        await expect(doctor.get_by_test_id("closing-page")).to_contain_text("Clôture de la consultation")
        await screenshot(doctor, "22-practitioner-closing-page")
        await screenshot(patient, "23-patient-ended")
        # the patient's link has no closing page; the practitioner's link leads back to it
        async with aiohttp.ClientSession() as http:
            async with http.get(patient_link + "/closing") as r:
                assert r.status == 404
        await doctor.goto(doctor_link)
        await doctor.wait_for_url(doctor_link + "/closing", timeout=10000)


async def test_patient_hangup_leaves_the_practitioner_in_the_call_and_the_patient_comes_back(
    tmp_path: Path, open_page: Any
) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await patient.get_by_test_id("hangup").click()
        await expect(patient.get_by_test_id("join")).to_be_visible()
        status = doctor.get_by_test_id("call-status")
        await expect(status).to_be_visible()
        await expect(status).to_contain_text("patient")
        await expect(doctor.get_by_test_id("hangup")).to_be_visible()  # still in the call
        await expect(doctor.get_by_test_id("remote-placeholder")).to_be_visible()  # no frozen picture
        await screenshot(doctor, "24-practitioner-patient-left")

        # back with the same link (the page never left it): one click, both see each other
        await patient.get_by_test_id("join").click()
        await expect(status).to_be_hidden()
        await wait_for(lambda: shows(patient, "red"))
        await wait_for(lambda: shows(doctor, "blue"))


async def _focused_testid(page: Page) -> str | None:
    result: str | None = await page.evaluate("() => document.activeElement?.dataset?.testid ?? null")
    return result


async def _tab_to(page: Page, testid: str, limit: int = 25) -> None:
    for _ in range(limit):
        await page.keyboard.press("Tab")
        if await _focused_testid(page) == testid:
            # a keyboard user sees where they are
            assert await page.evaluate("() => document.activeElement.matches(':focus-visible')")
            outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline != "none", outline
            return
    raise AssertionError(f"Tab never reached {testid}")


async def test_keyboard_only_from_waiting_room_to_the_call_controls(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        doctor: Page = await open_page("red")
        patient: Page = await open_page("blue")
        await doctor.goto(demo["practitioner_link"])
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        await expect(doctor.get_by_test_id("join")).to_be_enabled()
        await _tab_to(doctor, "join")
        await doctor.keyboard.press("Enter")
        await expect(patient.get_by_test_id("ready")).to_be_visible()
        await _tab_to(patient, "ready")
        await patient.keyboard.press("Enter")
        await wait_for(lambda: shows(doctor, "blue"))

        # in the call: every control is a button the Tab key reaches
        for testid in ("mic-toggle", "cam-toggle", "screen-toggle", "pip-toggle", "devices", "hangup"):
            tag = await patient.get_by_test_id(testid).evaluate("(el) => el.tagName")
            assert tag == "BUTTON", (testid, tag)
            assert await patient.get_by_test_id(testid).get_attribute("aria-label") or testid == "devices"
        await _tab_to(patient, "mic-toggle")
        await patient.keyboard.press("Enter")
        await expect(doctor.get_by_test_id("remote-muted")).to_be_visible()
        assert await _focused_testid(patient) == "mic-toggle"  # the focus stayed on the button
        await patient.keyboard.press("Space")
        await expect(doctor.get_by_test_id("remote-muted")).to_be_hidden()
        await _tab_to(patient, "devices")
        await patient.keyboard.press("Enter")
        await expect(patient.get_by_test_id("devices-dialog")).to_be_visible()
        await patient.keyboard.press("Escape")
        await expect(patient.get_by_test_id("devices-dialog")).to_be_hidden()
        assert await _focused_testid(patient) == "devices"


async def test_the_call_at_desktop_and_phone_sizes(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await doctor.set_viewport_size({"width": 1280, "height": 800})
        await patient.set_viewport_size({"width": 390, "height": 844})
        await patient.get_by_test_id("mic-toggle").click()  # a badge on the practitioner's picture
        await expect(doctor.get_by_test_id("remote-muted")).to_be_visible()
        await wait_for(lambda: shows(patient, "red"))
        for page, width in ((doctor, 1280), (patient, 390)):
            # nothing off-screen, no sideways scrolling
            assert await page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
            for testid in ("mic-toggle", "cam-toggle", "screen-toggle", "pip-toggle", "devices", "hangup"):
                box = await page.get_by_test_id(testid).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (testid, box)
        await screenshot(doctor, "25-call-desktop-1280x800")
        await screenshot(patient, "26-call-phone-390x844")
        await patient.get_by_test_id("devices").click()
        await screenshot(patient, "27-sources-dialog-phone")
        await patient.keyboard.press("Escape")
        await patient.get_by_test_id("lang-select").select_option("en")
        await expect(patient.get_by_test_id("hangup")).to_have_text("Hang up")
        await expect(patient.get_by_test_id("devices")).to_have_text("Mic and camera")
        await screenshot(patient, "28-call-phone-english")
