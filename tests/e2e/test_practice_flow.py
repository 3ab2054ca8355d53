"""The whole practice path in real Chromium with a real SMTP server (aiosmtpd on loopback).

Practitioner logs in, opens the record, schedules a consultation (the invitation
arrives by SMTP), sees the patient arrive on the day list, joins, the call happens
and ends, imports documents on the closing page, closes the act; the email
arrives; the patient opens the link, gives the date of birth and downloads a
document whose bytes match; a colleague with access sees it; one without gets 404.
"""

from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path
from typing import Any

from helpers.call_page import accept_notice, log_in, screenshot, shows, wait_for
from helpers.media_files import pdf, png
from helpers.practice import body_of, link_in, smtp_server, sql
from helpers.server import running_server
from playwright.async_api import Page, expect

PASSWORD = "correct horse battery"


async def test_the_whole_path_from_login_to_the_patients_download(tmp_path: Path, open_page: Any) -> None:
    async with smtp_server() as (inbox, port):
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none"}
        async with running_server(tmp_path / "data", **overrides) as server:
            demo = await server.demo()  # the demo practice: its practitioner and patient
            base = server.base_url
            await server.clinic.add_practitioner("colleague@example.org", PASSWORD, "Dr Collègue")
            await server.clinic.add_practitioner("stranger@example.org", PASSWORD, "Dr Étranger")
            doctor: Page = await open_page("red")
            patient: Page = await open_page("blue")

            # 1. login (French by default), then the record
            await log_in(doctor, base, demo["practitioner"]["email"], demo["practitioner"]["password"])
            await screenshot(doctor, "30-practitioner-day-list")
            await doctor.get_by_test_id("nav-patients").click()
            await doctor.get_by_role("link", name="Patient Démo").click()
            await expect(doctor.get_by_test_id("record-name")).to_have_text("Patient Démo")
            record_url = doctor.url

            # 2. schedule a consultation now: the invitation goes out by SMTP
            now = datetime.datetime.now(zoneinfo.ZoneInfo("Europe/Paris"))
            await doctor.get_by_test_id("schedule-date").fill(now.date().isoformat())
            await doctor.get_by_test_id("schedule-time").fill(now.strftime("%H:%M"))
            await doctor.get_by_test_id("schedule-submit").click()
            await expect(doctor.get_by_test_id("form-notice")).to_be_visible()
            (invitation,) = await inbox.wait(1)
            patient_link = link_in(invitation, base + "/c/")

            # 3. the day list shows the patient arriving in the waiting room, live
            await doctor.get_by_test_id("nav-day").click()
            (consultation_id,) = [r["consultation_id"] for r in sql(server, "SELECT consultation_id FROM mail_message")]
            row = doctor.locator(f'[data-consultation-id="{consultation_id}"]')
            await expect(row.get_by_test_id("consultation-status")).to_have_attribute("data-status", "absent")
            await patient.goto(patient_link)
            await accept_notice(patient)
            await patient.get_by_test_id("join").click()
            await expect(row.get_by_test_id("consultation-status")).to_have_attribute("data-status", "waiting-room", timeout=10000)
            await screenshot(doctor, "31-day-list-patient-waiting")

            # 4. join from the day list; the call happens (media crosses the SFU) and ends
            await row.get_by_test_id("join-consultation").click()
            await expect(doctor.get_by_test_id("ready")).to_be_visible()
            await doctor.get_by_test_id("ready").click()
            await wait_for(lambda: shows(doctor, "blue"))
            await wait_for(lambda: shows(patient, "red"))
            await doctor.get_by_test_id("hangup").click()
            await doctor.wait_for_url("**/closing", timeout=10000)
            await expect(patient.get_by_test_id("ended")).to_be_visible()

            # 5. the closing page: import three documents at once, remove one, close the act
            report, image = pdf("Compte rendu de consultation"), png(64, 48)
            await doctor.get_by_test_id("doc-import").set_input_files([
                {"name": "compte-rendu.pdf", "mimeType": "application/pdf", "buffer": report},
                {"name": "radio.png", "mimeType": "image/png", "buffer": image},
                {"name": "erreur.txt", "mimeType": "text/plain", "buffer": b"not for the patient\n"},
            ])
            items = doctor.get_by_test_id("doc-list").get_by_test_id("doc-item")
            await expect(items).to_have_count(3)
            await doctor.get_by_role("button", name="Retirer erreur.txt").click()
            await expect(items).to_have_count(2)
            await screenshot(doctor, "32-closing-page-documents")
            await expect(doctor.get_by_test_id("close-act")).to_have_text("Clôturer l'acte")
            await doctor.get_by_test_id("close-act").click()
            await expect(doctor.get_by_test_id("act-closed")).to_be_visible()
            await expect(doctor.get_by_test_id("close-result")).to_have_attribute("data-mail-queued", "true")
            consultation = await server.clinic.get_consultation(consultation_id or "")
            assert consultation.state.value == "closed"

            # 6. the email arrives through SMTP, without health data
            _, documents_mail = await inbox.wait(2)
            text = body_of(documents_mail)
            assert "compte-rendu" not in text and "radio" not in text and "Patient Démo" not in text
            access_link = link_in(documents_mail, base + "/d/")

            # 7. the patient opens it, gives a wrong then the right date of birth, downloads
            await patient.goto(access_link)
            await patient.get_by_test_id("access-birth").fill("1981-02-03")
            await patient.get_by_test_id("access-submit").click()
            await expect(patient.get_by_test_id("attempts-left")).to_have_text("4")
            await patient.get_by_test_id("access-birth").fill("1980-01-01")
            await patient.get_by_test_id("access-submit").click()
            listed = patient.get_by_test_id("access-document")
            await expect(listed).to_have_count(2)
            await screenshot(patient, "33-patient-documents")
            async with patient.expect_download() as download_info:
                await listed.filter(has_text="compte-rendu.pdf").get_by_test_id("access-download").click()
            download = await download_info.value
            saved = tmp_path / "downloaded.pdf"
            await download.save_as(saved)
            assert saved.read_bytes() == report
            assert download.suggested_filename == "compte-rendu.pdf"

            # 8. the practitioner sees the documents were opened; grants a colleague access
            await doctor.goto(record_url)
            link_item = doctor.get_by_test_id("patient-link")
            await expect(link_item).not_to_have_attribute("data-first-opened", "")
            await doctor.get_by_test_id("grant-email").fill("colleague@example.org")
            await doctor.get_by_test_id("grant-submit").click()
            await expect(doctor.get_by_test_id("team-member")).to_have_count(2)
            await expect(doctor.get_by_test_id("audit-log").locator('[data-action="document.download"]')).to_have_count(1)
            await screenshot(doctor, "34-record-page")

            # 9. the colleague with access sees the document (same bytes); a stranger gets 404
            browser = doctor.context.browser
            assert browser is not None
            colleague_context = await browser.new_context()
            colleague = await colleague_context.new_page()
            await log_in(colleague, base, "colleague@example.org", PASSWORD)
            await colleague.goto(record_url)
            document_link = colleague.get_by_test_id("record-document").filter(has_text="radio.png").get_by_role("link").first
            href = await document_link.get_attribute("href")
            assert href
            fetched = await colleague.request.get(base + href)
            assert fetched.status == 200 and await fetched.body() == image
            assert fetched.headers["content-type"] == "image/png"
            await expect(colleague.get_by_test_id("record-documents").get_by_test_id("record-document")).to_have_count(2)

            stranger_context = await browser.new_context()
            stranger = await stranger_context.new_page()
            await log_in(stranger, base, "stranger@example.org", PASSWORD)
            response = await stranger.goto(record_url)
            assert response is not None and response.status == 404
            await expect(stranger.get_by_test_id("error-page")).to_have_attribute("data-status", "404")
            fetched = await stranger.request.get(base + href)
            assert fetched.status == 404
            await screenshot(stranger, "35-stranger-404")

            # 10. English is available on the practice pages too
            await stranger.goto(base + "/")
            await stranger.get_by_test_id("lang-select").select_option("en")
            await expect(stranger.get_by_test_id("nav-patients")).to_have_text("Patients")
            await expect(stranger.get_by_test_id("logout")).to_have_text("Log out")
            await colleague_context.close()
            await stranger_context.close()
