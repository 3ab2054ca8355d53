"""Issue 20 items 3 and 4 in real Chromium: arrivals announced to the practitioner, joining from the day list.

The practitioner's day list is open in one browser, the patient opens the waiting room in
another: the day list announces the arrival (ARIA live region, tab title, the chime the
practitioner switched on, a desktop notification they allowed) and the patient reads that
their practitioner was told.  The practitioner then joins from the day list (a join pass:
nothing is revoked) and the link `teleconsult demo` printed still opens the call.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from helpers.call_page import accept_notice, log_in, shows, wait_for
from helpers.server import running_server
from playwright.async_api import Page, expect

# counts the desktop notifications the page makes, through the real constructor
NOTIFICATION_SPY = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notified = [];
  window.Notification = class extends Real {
    constructor(title, options) { super(title, options); window.__notified.push(title + "|" + (options?.body || "")); }
  };
})();
"""


async def test_an_arrival_is_announced_and_the_practitioner_joins_from_the_day_list(
        tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        base = server.base_url
        doctor: Page = await open_page("red")
        patient: Page = await open_page("blue")
        await doctor.context.grant_permissions(["notifications"], origin=base)
        await doctor.context.add_init_script(NOTIFICATION_SPY)
        await log_in(doctor, base, demo["practitioner"]["email"], demo["practitioner"]["password"])
        row = doctor.locator(f'[data-consultation-id="{demo["consultation_id"]}"]')
        await expect(row.get_by_test_id("consultation-status")).to_have_attribute("data-status", "absent")
        title_before = await doctor.title()
        notice = doctor.get_by_test_id("arrival-notice")
        await expect(notice).to_have_attribute("aria-live", "polite")
        await expect(notice).to_have_text("")
        await expect(doctor.get_by_test_id("arrival-notifications")).to_be_hidden()  # already allowed
        await doctor.get_by_test_id("arrival-sound").check()  # off by default; on, remembered

        # the patient enters the waiting room: the day list is told at once (pushed, not polled)
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        await expect(notice).to_have_text(re.compile("Patient Démo est arrivé"), timeout=5000)
        assert await notice.get_attribute("data-consultation-id") == demo["consultation_id"]
        await expect(row.get_by_test_id("consultation-status")).to_have_attribute("data-status", "waiting-room")
        await expect(doctor).to_have_title(re.compile(r"^\(1\) Patient en salle d'attente — "))
        assert await doctor.title() != title_before
        await expect(doctor.locator("[data-arrivals]")).to_have_attribute("data-chimes", "1")
        notified = await doctor.evaluate("window.__notified")
        assert len(notified) == 1 and "Démo" not in notified[0]  # no name on a locked screen
        assert await doctor.evaluate("localStorage.getItem('teleconsult.arrival-sound')") == "on"

        # the patient reads that the practitioner was told
        wait_line = patient.get_by_test_id("wait-estimate")
        await expect(wait_line).to_be_visible()
        await expect(wait_line).to_contain_text("Votre praticien a été prévenu")

        # the practitioner joins from the day list: a join pass, not the demo link, and the call happens
        await patient.get_by_test_id("join").click()
        await row.get_by_test_id("join-consultation").click()
        await doctor.wait_for_url(re.compile(r"/c/[A-Za-z0-9_-]+$"))
        assert doctor.url != demo["practitioner_link"]
        await doctor.get_by_test_id("ready").click()
        await wait_for(lambda: shows(doctor, "blue"))
        await wait_for(lambda: shows(patient, "red"))
        await expect(wait_line).to_be_hidden()

        # the demo's practitioner link still opens the call (this tab takes over from the day list's)
        again = await doctor.context.new_page()
        await again.goto(demo["practitioner_link"])
        await wait_for(lambda: shows(again, "blue"))
