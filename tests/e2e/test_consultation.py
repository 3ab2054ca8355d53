"""A whole consultation between two real Chromium browsers through our SFU."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiortc import rtcrtpreceiver
from aiortc.codecs import h264, opus, vpx
from playwright.async_api import Page, expect

from conftest import INBOUND_STATS, PROBE_VIDEO, colour_name, screenshot
from server import running_server


@pytest.fixture
def codec_spy(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every decoder made and every frame encoded or packed in this process."""
    counts: Counter[str] = Counter()

    def count(cls: type, method: str, key: str) -> None:
        original = getattr(cls, method)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[key] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, wrapper)

    for cls in (vpx.Vp8Decoder, h264.H264Decoder, opus.OpusDecoder):
        count(cls, "__init__", "decoder")
    for cls in (vpx.Vp8Encoder, h264.H264Encoder, opus.OpusEncoder):
        count(cls, "encode", "encode")
    count(vpx.Vp8Encoder, "pack", "pack-video")
    count(opus.OpusEncoder, "pack", "pack-audio")
    original_get_decoder = rtcrtpreceiver.get_decoder

    def get_decoder(codec: Any) -> Any:
        counts["get_decoder"] += 1
        return original_get_decoder(codec)

    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", get_decoder)
    return counts


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s (last value: {last!r})")


async def remote_colour(page: Page) -> str | None:
    px = await page.evaluate(PROBE_VIDEO, "remote-video")
    return colour_name(px) if px else None


async def frames_decoded(page: Page) -> int:
    stats = await page.evaluate(INBOUND_STATS)
    return int(stats["video"]) if stats else 0


async def test_two_browsers_meet_and_see_each_other(tmp_path: Path, open_page: Any, codec_spy: Counter[str]) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        doctor: Page = await open_page("red")
        patient: Page = await open_page("blue")
        await doctor.goto(demo["practitioner_link"])
        await patient.goto(demo["patient_link"])

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
        assert await wait_for(lambda: remote_colour(doctor)) == "blue"
        first_frame_ms = (time.monotonic() - ready_at) * 1000
        assert await wait_for(lambda: remote_colour(patient)) == "red"
        n_doctor = await wait_for(lambda: frames_decoded(doctor))
        n_patient = await wait_for(lambda: frames_decoded(patient))
        await asyncio.sleep(1.0)
        assert await frames_decoded(doctor) > n_doctor and await frames_decoded(patient) > n_patient
        # and hears: audio packets arrive on both sides
        for page in (doctor, patient):
            stats = await page.evaluate(INBOUND_STATS)
            assert stats["audio"] > 0, stats
        await screenshot(doctor, "03-practitioner-in-call")
        await screenshot(patient, "04-patient-in-call")
        print(f"ready -> first remote frame: {first_frame_ms:.0f} ms")

        # the server forwarded encoded frames: it made no decoder and encoded nothing
        assert codec_spy["pack-video"] > 0 and codec_spy["pack-audio"] > 0
        assert codec_spy["decoder"] == 0, codec_spy
        assert codec_spy["get_decoder"] == 0, codec_spy
        assert codec_spy["encode"] == 0, codec_spy
        # the consultation state is persisted
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        assert consultation.state.value == "in_call"


async def test_patient_first_then_reload_in_call_then_hangup(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient: Page = await open_page("blue")
        await patient.set_viewport_size({"width": 390, "height": 780})  # a phone
        await patient.goto(demo["patient_link"])
        await expect(patient.get_by_test_id("peer-status")).to_have_attribute("data-state", "absent")
        await patient.get_by_test_id("join").click()
        await expect(patient.get_by_test_id("peer-status")).to_have_attribute("data-state", "invited")

        # the practitioner arrives later and sees the invitation at once
        doctor: Page = await open_page("red")
        await doctor.goto(demo["practitioner_link"])
        await expect(doctor.get_by_test_id("ready")).to_be_visible()
        await expect(doctor.get_by_test_id("join")).to_be_hidden()
        await doctor.get_by_test_id("ready").click()
        assert await wait_for(lambda: remote_colour(patient)) == "red"
        assert await wait_for(lambda: remote_colour(doctor)) == "blue"
        await screenshot(patient, "05-patient-in-call-phone")

        # the patient reloads: back in the call, pictures both ways, the practitioner did nothing
        await patient.reload()
        await expect(patient.get_by_test_id("remote-video")).to_be_visible()
        assert await wait_for(lambda: remote_colour(patient)) == "red"
        before = await frames_decoded(doctor)
        await wait_for(lambda: _more(doctor, before))
        assert await remote_colour(doctor) == "blue"

        # the practitioner hangs up: the call ends for both
        await doctor.get_by_test_id("hangup").click()
        await expect(patient.get_by_test_id("ended")).to_be_visible()
        await expect(doctor.get_by_test_id("ended")).to_be_visible()
        await screenshot(patient, "06-patient-ended-phone")
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        assert consultation.state.value == "ended"


async def _more(page: Page, before: int) -> bool:
    return await frames_decoded(page) > before + 10


async def test_second_tab_takes_over_and_the_first_is_told(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        first: Page = await open_page("blue")
        await first.goto(demo["patient_link"])
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
