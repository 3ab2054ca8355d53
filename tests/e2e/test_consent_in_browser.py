"""The patient's consent in real browsers: no call without it, the practitioner sees it, recording asks (issue 19)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from clinic.notices import RECORDING, TELECONSULTATION
from helpers.call_page import screenshot, shows, wait_for
from helpers.server import running_server


async def test_no_call_without_consent_the_practitioner_sees_it_and_recording_asks(
        tmp_path: Path, open_page: Any) -> None:
    settings = {"practice.contact": "01 23 45 67 89", "recording.width": 320, "recording.height": 120}
    async with running_server(tmp_path / "data", **settings) as server:
        demo = await server.demo()
        doctor, patient = await open_page("red"), await open_page("blue")
        await doctor.goto(demo["practitioner_link"])
        await patient.goto(demo["patient_link"])
        notice = patient.get_by_test_id("consent-notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_have_attribute("data-version", TELECONSULTATION.version)
        await expect(notice).to_contain_text("secret médical")
        card = doctor.get_by_test_id("readiness-card")
        await expect(card).to_have_attribute("data-consent", "pending")
        await doctor.get_by_test_id("join").click()
        # invited, but no way into the call before answering
        await expect(patient.get_by_test_id("peer-status")).to_have_attribute("data-state", "waiting-for-you")
        await expect(patient.get_by_test_id("ready")).to_be_hidden()
        await expect(patient.get_by_test_id("join")).to_be_hidden()

        await patient.get_by_test_id("consent-refuse").click()
        refused = patient.get_by_test_id("consent-refused")
        await expect(refused).to_be_visible()
        await expect(refused).to_contain_text("01 23 45 67 89")
        await expect(notice).to_be_hidden()
        await expect(patient.get_by_test_id("ready")).to_be_hidden()
        await expect(card).to_have_attribute("data-consent", "refused")
        await screenshot(patient, "consent-refused-patient")
        # the browser cannot be talked round: the server refuses `ready` too
        await patient.evaluate("window.__teleconsult.client.ready()")
        await patient.wait_for_timeout(300)
        assert (await server.clinic.get_consultation(demo["consultation_id"])).patient_stage.value == "waiting_room"

        # the patient reads again and accepts: the call can start
        await patient.get_by_test_id("consent-review").click()
        await patient.get_by_test_id("consent-accept").click()
        await expect(card).to_have_attribute("data-consent", "given")
        await expect(patient.get_by_test_id("consent-notice")).to_be_hidden()
        await screenshot(doctor, "consent-given-practitioner")
        await patient.get_by_test_id("ready").click()
        await wait_for(lambda: shows(doctor, "blue"))
        await wait_for(lambda: shows(patient, "red"))

        # recording asks the patient by default
        await doctor.get_by_test_id("record-toggle").click()
        dialog = patient.get_by_test_id("recording-consent-dialog")
        await expect(dialog).to_be_visible()
        await patient.get_by_test_id("recording-consent-accept").click()
        for page in (doctor, patient):
            await expect(page.get_by_test_id("recording-indicator")).to_be_visible()
        await doctor.get_by_test_id("record-toggle").click()
        for page in (doctor, patient):
            await expect(page.get_by_test_id("recording-indicator")).to_be_hidden()

        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        ledger = await server.clinic.consents_of_patient(consultation.patient_id)
        assert [(e.subject, e.decision, e.notice_version) for e in ledger] == [
            ("teleconsultation", "refused", TELECONSULTATION.version),
            ("teleconsultation", "given", TELECONSULTATION.version),
            ("recording", "given", RECORDING.version),
        ]
        # ... and in the record's export
        archive = await server.clinic.export_record(consultation.practitioner_id, consultation.patient_id,
                                                    tmp_path / "exports")
        with zipfile.ZipFile(archive) as z:
            exported = json.loads(z.read("consents.json"))
        assert [(x["subject"], x["decision"]) for x in exported] == [
            ("teleconsultation", "refused"), ("teleconsultation", "given"), ("recording", "given")]
