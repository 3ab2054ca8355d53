"""The waiting room in real Chromium: the connection test, the readiness card, devices that fail or change."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.call_page import accept_notice, frames_decoded, screenshot, wait_for
from helpers.chromium import CHROMIUM, FLAGS, launch_page
from helpers.server import running_server
from playwright.async_api import Browser, Page, async_playwright, expect

Launcher = Callable[..., Awaitable[Page]]
VERDICT = r"^(good|fair|poor|failed)$"
FAKE_UI = "--use-fake-ui-for-media-stream"
FAKE_DEVICE = "--use-fake-device-for-media-stream"


@pytest.fixture
async def launch() -> AsyncIterator[Launcher]:
    """launch(extra_flags=(), without=(), permissions=None) -> a page in its own Chromium."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    browsers: list[Browser] = []
    async with async_playwright() as pw:
        async def factory(extra: tuple[str, ...] = (), without: tuple[str, ...] = (),
                          permissions: list[str] | None = None, name: str = "page") -> Page:
            args = [f for f in FLAGS if not f.startswith(without)] if without else list(FLAGS)
            return await launch_page(pw, browsers, [*args, *extra], name=name, viewport=(1024, 760),
                                     permissions=permissions)
        try:
            yield factory
        finally:
            for b in browsers:
                await b.close()


async def result_numbers(page: Page) -> dict[str, Any]:
    return await page.get_by_test_id("net-test-result").evaluate(
        """(el) => ({verdict: el.dataset.verdict, rtt: Number(el.dataset.rttMs), jitter: Number(el.dataset.jitterMs),
                     loss: Number(el.dataset.lossPct), up: Number(el.dataset.upKbps), down: Number(el.dataset.downKbps),
                     text: el.textContent})"""
    )


async def run_connection_test(page: Page) -> dict[str, Any]:
    await expect(page.get_by_test_id("join")).to_be_visible()
    await page.get_by_test_id("net-test").click()
    result = page.get_by_test_id("net-test-result")
    await expect(result).to_be_visible()
    await expect(result).to_have_attribute("data-verdict", _re(VERDICT), timeout=15000)
    return await result_numbers(page)


def _re(pattern: str) -> Any:
    import re

    return re.compile(pattern)


async def test_connection_test_on_loopback_is_good_and_the_practitioner_sees_it(tmp_path: Path, launch: Launcher) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient = await launch(name="patient")
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        got = await run_connection_test(patient)
        print("connection test on loopback:", got)
        assert got["verdict"] == "good", got
        assert got["rtt"] >= 0 and got["jitter"] >= 0
        assert got["up"] > 0 and got["down"] > 0 and got["loss"] < 5
        # the verdict in plain words, the numbers on demand
        assert "bonne" in got["text"]
        details = patient.get_by_test_id("net-test-result").locator("details")
        await details.locator("summary").click()
        await expect(details.locator("dl")).to_contain_text("kbit/s")
        await screenshot(patient, "wr-01-patient-connection-test-good")
        # the patient does not see a card of their own
        await expect(patient.get_by_test_id("readiness-card")).to_be_hidden()

        # the practitioner sees it, before the call...
        doctor = await launch(name="doctor")
        await doctor.goto(demo["practitioner_link"])
        card = doctor.get_by_test_id("readiness-card")
        await expect(card).to_have_attribute("data-verdict", "good", timeout=10000)
        await expect(card).to_contain_text("Connexion du patient : bonne")
        await expect(card).to_contain_text("micro et caméra prêts")
        await screenshot(doctor, "wr-02-practitioner-readiness-card")
        # ...after a reload (from the database)...
        await doctor.reload()
        await expect(doctor.get_by_test_id("readiness-card")).to_have_attribute("data-verdict", "good", timeout=10000)
        # ...and during the call, where the patient's mute shows too
        await doctor.get_by_test_id("join").click()
        await patient.get_by_test_id("ready").click()
        await expect(doctor.get_by_test_id("remote-video")).to_be_visible()
        await patient.get_by_test_id("mic-toggle").click()
        card = doctor.get_by_test_id("readiness-card")
        await expect(card).to_be_visible()
        await expect(card).to_have_attribute("data-mic", "off")
        await expect(card).to_contain_text("micro coupé")
        await screenshot(doctor, "wr-03-practitioner-readiness-in-call")
        stored = await server.clinic.get_readiness(demo["consultation_id"])
        assert [r.test.verdict for r in stored.values() if r.test] == ["good"]


async def test_connection_test_with_server_side_loss_is_fair_or_poor(tmp_path: Path, launch: Launcher) -> None:
    async with running_server(tmp_path / "data", probe_drop_rate=0.3) as server:
        demo = await server.demo()
        patient = await launch(name="patient")
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        got = await run_connection_test(patient)
        print("connection test with 30% loss:", got)
        assert got["verdict"] in ("fair", "poor"), got
        assert got["loss"] >= 5
        await screenshot(patient, "wr-04-patient-connection-test-lossy")


async def test_permission_denied_explains_and_joins_without_devices(tmp_path: Path, launch: Launcher) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        # no fake permission prompt, and the context grants nothing: getUserMedia is denied
        patient = await launch(without=(FAKE_UI,), permissions=[], name="patient")
        doctor = await launch(name="doctor")
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        error = patient.get_by_test_id("device-error")
        await expect(error).to_be_visible()
        await expect(error).to_contain_text("refusé")
        await expect(patient.get_by_test_id("mic-toggle")).to_be_disabled()
        await screenshot(patient, "wr-05-patient-permission-denied")
        # the explanation follows the language switch
        await patient.get_by_test_id("lang-select").select_option("en")
        await expect(error).to_contain_text("denied")
        await patient.get_by_test_id("lang-select").select_option("fr")

        await doctor.goto(demo["practitioner_link"])
        card = doctor.get_by_test_id("readiness-card")
        await expect(card).to_have_attribute("data-mic", "missing", timeout=10000)
        await expect(card).to_contain_text("pas de micro, pas de caméra")
        await patient.get_by_test_id("join").click()
        await doctor.get_by_test_id("ready").click()
        # the patient is in the call with no device, and receives the practitioner
        await expect(patient.get_by_test_id("remote-video")).to_be_visible()
        await wait_for(lambda: frames_decoded(patient))
        await expect(doctor.get_by_test_id("remote-placeholder")).to_be_visible()
        await screenshot(patient, "wr-06-patient-in-call-without-devices")


async def test_switching_between_two_fake_cameras_changes_the_preview(tmp_path: Path, launch: Launcher) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        page = await launch(extra=(f"{FAKE_DEVICE}=device-count=2",), without=(FAKE_DEVICE,), name="patient")
        await page.goto(demo["patient_link"])
        cams = page.get_by_test_id("cam-select")
        await expect(cams.locator("option")).to_have_count(2)
        preview_label = "() => document.querySelector('[data-testid=local-preview]').srcObject?.getVideoTracks()[0]?.label"
        playing = "() => document.querySelector('[data-testid=local-preview]').videoWidth > 0"
        await wait_for(lambda: page.evaluate(playing))
        before = await page.evaluate(preview_label)
        options = await cams.locator("option").evaluate_all("(os) => os.map((o) => ({value: o.value, label: o.textContent}))")
        other = next(o for o in options if o["label"] != before)
        await cams.select_option(other["value"])
        await wait_for(lambda: page.evaluate(f"() => ({preview_label})() === {other['label']!r}"))
        await wait_for(lambda: page.evaluate(playing))
        assert await page.evaluate(preview_label) != before
        # remembered for this browser
        saved = await page.evaluate("() => JSON.parse(localStorage.getItem('teleconsult.devices')).camId")
        assert saved == other["value"]
        await page.reload()
        await wait_for(lambda: page.evaluate(f"() => ({preview_label})() === {other['label']!r}"))


VERDICT_CASES = [
    # (rtt, loss, up, down, reason) -> verdict
    ((40, 0, 1000, 1000, None), "good"),
    ((199, 4.9, 750, 750, None), "good"),
    ((200, 0, 1000, 1000, None), "fair"),
    ((40, 5, 1000, 1000, None), "fair"),
    ((40, 0, 749, 1000, None), "fair"),
    ((40, 0, 1000, 749, None), "fair"),
    ((499, 14.9, 250, 250, None), "fair"),
    ((500, 0, 1000, 1000, None), "poor"),
    ((40, 15, 1000, 1000, None), "poor"),
    ((40, 0, 249, 1000, None), "poor"),
    ((40, 0, 1000, 249, None), "poor"),
    ((None, 0, 1000, 1000, None), "poor"),
    ((40, 0, 1000, 1000, "ice"), "failed"),
    ((None, None, None, None, "timeout"), "failed"),
]


async def test_verdict_table(tmp_path: Path, launch: Launcher) -> None:
    async with running_server(tmp_path / "data") as server:
        page = await launch(name="verdict")
        await page.goto(server.base_url + "/healthz")
        cases = [{"rtt_ms": r, "loss_pct": l, "up_kbps": u, "down_kbps": d, "reason": why}
                 for (r, l, u, d, why), _ in VERDICT_CASES]
        got = await page.evaluate(
            """async (cases) => {
                const m = await import('/static/js/verdict.js');
                return {
                    verdicts: cases.map((c) => m.verdict(c)),
                    median: [m.median([]), m.median([3, 1, 2]), m.median([4, 1, 3, 2])],
                    jitter: [m.jitter([]), m.jitter([10]), m.jitter([10, 14, 12])],
                    rate: [m.rateKbps(250000, 250, 1992), m.rateKbps(1000, 1, 0)],
                    loss: [m.lossPct(250, 175), m.lossPct(0, 0), m.lossPct(10, 12)],
                };
            }""",
            cases,
        )
        assert got["verdicts"] == [want for _, want in VERDICT_CASES]
        assert got["median"] == [None, 2, 2.5]
        assert got["jitter"] == [None, 0, 3]
        assert got["rate"][0] == pytest.approx(1000, rel=1e-3) and got["rate"][1] == 0
        assert got["loss"] == [30, 0, 0]


async def test_mic_level_moves_with_the_sound_and_stops_when_muted(tmp_path: Path, open_page: Any) -> None:
    from helpers.call_page import wait_for

    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        page = await open_page("blue")
        await page.goto(demo["patient_link"])
        level = page.get_by_test_id("mic-level")

        async def loud() -> bool:
            return float(await level.get_attribute("data-level") or 0) > 0.3

        await wait_for(loud)  # Chromium's fake microphone beeps
        await page.get_by_test_id("mic-toggle").click()
        await page.wait_for_timeout(300)
        for _ in range(10):  # muted: the meter stays at zero
            assert float(await level.get_attribute("data-level") or 0) == 0
            await page.wait_for_timeout(100)


# every AudioContext the page makes, kept so that a test can see which are still running
AUDIO_CONTEXTS = """
window.__contexts = [];
const Original = window.AudioContext;
window.AudioContext = class extends Original {
  constructor(...args) { super(...args); window.__contexts.push(this); }
};
"""


async def test_mic_meter_runs_only_while_the_waiting_room_shows_it(tmp_path: Path, open_page: Any) -> None:
    """The meter's AudioContext is closed during the call (a busy audio thread a weak device's call needs) and
    comes back in the waiting room."""
    from helpers.call_page import enter_call

    async with running_server(tmp_path / "data") as server:
        doctor, patient = await open_page("red"), await open_page("blue")
        await patient.add_init_script(AUDIO_CONTEXTS)
        level = patient.get_by_test_id("mic-level")
        running = "() => window.__contexts.filter((c) => c.state !== 'closed').length"

        async def loud() -> bool:
            return float(await level.get_attribute("data-level") or 0) > 0.3

        async def still(count: int) -> bool:
            return int(await patient.evaluate(running)) == count

        await enter_call(await server.demo(), doctor, patient)
        await wait_for(lambda: still(0))
        # the fake microphone beeps every second: in 2.5 s of call the hidden meter does not move
        seen = set()
        for _ in range(10):
            seen.add(await level.get_attribute("data-level"))
            await patient.wait_for_timeout(250)
        assert len(seen) == 1, seen
        await patient.get_by_test_id("hangup").click()  # the patient leaves: back to the waiting room
        await expect(patient.locator("#waiting")).to_be_visible()
        await wait_for(lambda: still(1))
        await wait_for(loud)
