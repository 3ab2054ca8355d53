"""Issue 20 item 5 in real Chromium: the speaker (audio output) choice, its test sound, remembered.

Chromium's fake devices name three audio outputs, so the choice is real: the remote
video's `sinkId` follows it, the test sound plays (its element's clock advances) on the
chosen output, the choice survives a reload and is offered again in the call's sources
dialog.  Where the browser cannot route sound (no `setSinkId`) the choice is not shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.call_page import accept_notice, shows, wait_for
from helpers.server import running_server
from playwright.async_api import Page, expect

NO_SINK = "delete HTMLMediaElement.prototype.setSinkId;"


async def test_the_speaker_is_chosen_tested_remembered_and_offered_in_the_call(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient: Page = await open_page("blue")
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        select = patient.get_by_test_id("speaker-select")
        await expect(select).to_be_visible()
        outputs = await select.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
        assert len(outputs) >= 2, outputs  # Chromium's fake outputs
        chosen = outputs[-1]
        await select.select_option(chosen)
        sink_of_remote = "document.querySelector('[data-testid=remote-video]').sinkId"
        await wait_for(lambda: patient.evaluate(f"{sink_of_remote} === {chosen!r}"), timeout=5)
        saved = await patient.evaluate("JSON.parse(localStorage.getItem('teleconsult.devices')).speakerId")
        assert saved == chosen

        # the test sound plays, on the chosen output
        await patient.get_by_test_id("speaker-test").click()
        await expect(patient.get_by_test_id("speaker-test")).to_have_attribute("data-played", "1")
        sound = "document.querySelector('audio[data-role=speaker-test]')"
        assert await patient.evaluate(f"{sound}.sinkId") == chosen
        await wait_for(lambda: patient.evaluate(f"{sound}.currentTime > 0.1 && !{sound}.paused"), timeout=5)

        # remembered: after a reload the same output is chosen and used
        await patient.reload()  # (the notice was accepted: it is not asked again)
        await expect(select).to_have_value(chosen)
        await wait_for(lambda: patient.evaluate(f"{sink_of_remote} === {chosen!r}"), timeout=5)

        # in the call, the sources dialog offers it too
        doctor: Page = await open_page("red")
        await doctor.goto(demo["practitioner_link"])
        await doctor.get_by_test_id("join").click()
        await patient.get_by_test_id("ready").click()
        await wait_for(lambda: shows(patient, "red"))
        await patient.get_by_test_id("devices").click()
        dialog = patient.get_by_test_id("devices-dialog")
        await expect(dialog.get_by_test_id("speaker-select")).to_be_visible()
        await expect(dialog.get_by_test_id("speaker-test")).to_be_visible()

        # a browser that cannot route sound shows no choice (the sound plays on the default output)
        other = await doctor.context.new_page()
        await other.add_init_script(NO_SINK)
        await other.goto(demo["practitioner_link"])
        await expect(other.get_by_test_id("mic-select")).to_be_attached()
        await wait_for(lambda: other.evaluate("document.querySelectorAll('[data-testid=mic-select] option').length > 0"),
                       timeout=5)
        await expect(other.get_by_test_id("speaker-select")).to_be_hidden()
        await expect(other.get_by_test_id("speaker-test")).to_be_hidden()
