"""Move then cancel an appointment from the pages, in real Chromium, with the mails received by aiosmtpd.

The practitioner creates an English-speaking patient, schedules, moves the
appointment from the record page and cancels it from the day list; each step's
mail arrives (its .ics parsed back); the old links no longer open the waiting room.
"""

from __future__ import annotations

import datetime
import zoneinfo
from pathlib import Path
from typing import Any

from helpers import axe
from helpers.call_page import screenshot
from helpers.ics import parse
from helpers.practice import body_of, link_in, smtp_server
from helpers.server import running_server
from playwright.async_api import Page, expect

PASSWORD = "correct horse battery"
TZ = zoneinfo.ZoneInfo("Europe/Paris")


def calendar_event(message: Any) -> tuple[str, dict[str, str]]:
    """The METHOD and the VEVENT's properties of a mail's .ics."""
    (attachment,) = list(message.iter_attachments())
    calendar = parse(attachment.get_payload(decode=True))
    (event,) = calendar.children
    return calendar.one("METHOD"), {name: event.one(name) for name in ("UID", "SEQUENCE", "STATUS", "DTSTART")}


async def accessible(page: Page, script: str) -> None:
    """No serious or critical axe violation on the page as it is now."""
    assert axe.blocking(await axe.violations(page, script)) == []


async def test_move_then_cancel_from_the_pages(tmp_path: Path, open_page: Any) -> None:
    script = axe.source()
    async with smtp_server() as (inbox, port):
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none",
                     "practice.name": "Cabinet des Tilleuls"}
        async with running_server(tmp_path / "data", **overrides) as server:
            base = server.base_url
            await server.clinic.add_practitioner("alice@example.org", PASSWORD, "Dr Alice Durand")
            doctor: Page = await open_page("red")
            patient: Page = await open_page("blue")

            await doctor.goto(base + "/login")
            await doctor.get_by_test_id("login-email").fill("alice@example.org")
            await doctor.get_by_test_id("login-password").fill(PASSWORD)
            await doctor.get_by_test_id("login-submit").click()
            await doctor.wait_for_url(base + "/")

            # a patient who reads English; an appointment in three days
            await doctor.goto(base + "/patients/new")
            await doctor.get_by_test_id("patient-name").fill("John Smith")
            await doctor.get_by_test_id("patient-email").fill("john@example.org")
            await doctor.get_by_test_id("patient-birth").fill("1980-02-03")
            await doctor.get_by_test_id("patient-language").select_option("en")
            await doctor.get_by_test_id("patient-save").click()
            await expect(doctor.get_by_test_id("record-name")).to_have_text("John Smith")
            record_url = doctor.url
            day = (datetime.datetime.now(TZ) + datetime.timedelta(days=3)).date()
            await doctor.get_by_test_id("schedule-date").fill(day.isoformat())
            await doctor.get_by_test_id("schedule-time").fill("10:00")
            await doctor.get_by_test_id("schedule-submit").click()
            await expect(doctor.get_by_test_id("form-notice")).to_be_visible()
            (invitation,) = await inbox.wait(1)
            assert "Hello" in body_of(invitation) and "Dr Alice Durand" in body_of(invitation)
            first_link = link_in(invitation, base + "/c/")
            method, first = calendar_event(invitation)
            assert method == "REQUEST" and first["SEQUENCE"] == "0"
            await patient.goto(first_link)
            await expect(patient.get_by_test_id("consent-notice")).to_be_visible()  # the waiting room opens

            # move from the record page
            moved_day = day + datetime.timedelta(days=1)
            await doctor.get_by_test_id("appointment-move-open").click()
            await doctor.get_by_test_id("appointment-move-date").fill(moved_day.isoformat())
            await doctor.get_by_test_id("appointment-move-time").fill("16:45")
            await screenshot(doctor, "40-record-appointment-move")
            await accessible(doctor, script)
            await doctor.get_by_test_id("appointment-move").click()
            await doctor.wait_for_url(record_url + "?changed=moved")
            await expect(doctor.get_by_test_id("form-notice")).to_be_visible()
            moved = (await inbox.wait(2))[1]
            assert "16:45" in body_of(moved) and "moved" in str(moved["Subject"])
            second_link = link_in(moved, base + "/c/")
            method, second = calendar_event(moved)
            assert method == "REQUEST" and second["UID"] == first["UID"] and second["SEQUENCE"] == "1"
            assert second["DTSTART"] != first["DTSTART"]
            await patient.goto(first_link)
            await expect(patient.get_by_test_id("error-page")).to_have_attribute("data-status", "410")
            await expect(patient.get_by_test_id("error-page")).to_contain_text("moved")
            await expect(patient.get_by_test_id("consent-notice")).to_have_count(0)
            await patient.goto(second_link)
            await expect(patient.get_by_test_id("consent-notice")).to_be_visible()

            # cancel from the day list of the new day
            await doctor.goto(f"{base}/?day={moved_day.isoformat()}")
            row = doctor.get_by_test_id("day-item")
            await expect(row).to_have_count(1)
            await screenshot(doctor, "41-day-list-appointment-controls")
            await accessible(doctor, script)
            # a time already gone: a page says why, nothing changes, the way back works
            await row.get_by_test_id("appointment-move-open").click()
            await row.get_by_test_id("appointment-move-date").fill((day - datetime.timedelta(days=5)).isoformat())
            await row.get_by_test_id("appointment-move-time").fill("09:00")
            await row.get_by_test_id("appointment-move").click()
            await expect(doctor.get_by_test_id("form-error")).to_have_attribute("data-error", "error.when-past")
            await accessible(doctor, script)
            await doctor.get_by_test_id("appointment-back").click()
            await expect(row.get_by_test_id("consultation-status")).not_to_have_attribute("data-status", "cancelled")
            assert len(inbox.messages) == 2
            await row.get_by_test_id("appointment-cancel").click()
            await expect(row.get_by_test_id("consultation-status")).to_have_attribute("data-status", "cancelled")
            await expect(row.get_by_test_id("join-consultation")).to_have_count(0)
            cancelled = (await inbox.wait(3))[2]
            assert "/c/" not in body_of(cancelled) and "cancelled" in str(cancelled["Subject"])
            method, third = calendar_event(cancelled)
            assert method == "CANCEL" and third["STATUS"] == "CANCELLED" and third["SEQUENCE"] == "2"
            assert third["UID"] == first["UID"]
            await patient.goto(second_link)
            await expect(patient.get_by_test_id("error-page")).to_contain_text("cancelled")
            await screenshot(patient, "42-old-link-appointment-cancelled")
            await accessible(patient, script)
            await expect(patient.get_by_test_id("consent-notice")).to_have_count(0)
            await doctor.goto(record_url)
            await expect(doctor.get_by_test_id("record-consultation")).to_have_attribute("data-cancelled", "true")
            assert len(inbox.messages) == 3
