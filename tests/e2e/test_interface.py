"""The interface as people see it (issue 20 items 6 and 7), in real Chromium against a real server.

One server and one call serve every screen: each is photographed at 390, 1024 and 1440 px
(artifacts/screenshots/) and checked by axe-core (tests/helpers/axe.py) with zero serious or
critical violations; the call's toolbar keeps one row from 360 to 1920 px. Then a practitioner
who only uses the keyboard goes from the waiting room through the call to closing the act.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers import axe
from helpers.call_page import accept_notice, enter_call, shows, wait_for
from helpers.closing import pdf_bytes
from helpers.practice import link_in, smtp_server
from helpers.server import running_server
from helpers.ui_checks import focused, shoot, tab_to, toolbar_on_one_row
from playwright.async_api import Page, expect


async def login(page: Page, base_url: str, demo: dict[str, Any]) -> None:
    await page.get_by_test_id("login-email").fill(demo["practitioner"]["email"])
    await page.get_by_test_id("login-password").fill(demo["practitioner"]["password"])
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(base_url + "/")


async def test_every_screen_photographed_and_free_of_serious_axe_violations(tmp_path: Path, open_page: Any) -> None:
    script = axe.source()
    counts: dict[str, int] = {}
    kinds: dict[str, list[str]] = {}
    serious: dict[str, list[dict[str, Any]]] = {}

    async def check(page: Page, name: str, *, full_page: bool = False) -> None:
        await page.set_viewport_size({"width": 1024, "height": 768})
        found = await axe.violations(page, script)
        counts[name] = len(found)
        kinds[name] = [f"{v['id']} ({v['impact']})" for v in found]
        if axe.blocking(found):
            serious[name] = axe.blocking(found)
        shots = await shoot(page, name, full_page=full_page)
        assert all(p.stat().st_size > 1000 for p in shots), shots
        await page.set_viewport_size({"width": 1024, "height": 768})

    async with smtp_server() as (inbox, port):
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none"}
        async with running_server(tmp_path / "data", **overrides) as server:
            demo = await server.demo()
            base = server.base_url
            doctor: Page = await open_page("red")
            patient: Page = await open_page("blue")

            # the practice pages
            await doctor.goto(base + "/login")
            await check(doctor, "login")
            await login(doctor, base, demo)
            await check(doctor, "day-list", full_page=True)
            await doctor.get_by_test_id("nav-patients").click()
            await doctor.get_by_role("link", name="Patient Démo").click()
            await expect(doctor.get_by_test_id("record-name")).to_be_visible()
            await check(doctor, "record", full_page=True)

            # the waiting room (the patient's, with the notice), then the call
            await patient.goto(demo["patient_link"])
            await expect(patient.get_by_test_id("consent-notice")).to_be_visible()
            await check(patient, "waiting-room", full_page=True)
            await enter_call(demo, doctor, patient)
            await check(doctor, "call")
            counts_per_width = await toolbar_on_one_row(doctor)
            assert min(counts_per_width.values()) >= 7, counts_per_width  # mic, cam, sources, share, board, chat, hang-up
            await toolbar_on_one_row(patient)

            await doctor.get_by_test_id("chat-toggle").click()
            await doctor.get_by_test_id("chat-input").fill("Bonjour")
            await doctor.get_by_test_id("chat-send").click()
            await expect(patient.get_by_test_id("chat-unread")).to_have_text("1")
            await check(doctor, "call-chat-open")
            await toolbar_on_one_row(doctor)
            await doctor.get_by_test_id("chat-close").click()

            await doctor.get_by_test_id("whiteboard-toggle").click()
            await expect(doctor.get_by_test_id("whiteboard-canvas")).to_be_visible()
            await check(doctor, "whiteboard")
            await toolbar_on_one_row(doctor, (360, 1440))
            await doctor.get_by_test_id("whiteboard-toggle").click()
            await wait_for(lambda: shows(doctor, "blue"))

            # the closing page, then the patient's documents
            await doctor.get_by_test_id("hangup").click()
            await doctor.wait_for_url("**/closing", timeout=10000)
            await doctor.get_by_test_id("doc-import").set_input_files(
                [{"name": "compte-rendu.pdf", "mimeType": "application/pdf", "buffer": pdf_bytes()}])
            await expect(doctor.get_by_test_id("doc-item")).to_have_count(1)
            await check(doctor, "closing", full_page=True)
            await doctor.get_by_test_id("close-act").click()
            await expect(doctor.get_by_test_id("act-closed")).to_be_visible()
            documents_mail = (await inbox.wait(1))[-1]
            await patient.goto(link_in(documents_mail, base + "/d/"))
            await check(patient, "patient-access")
            await patient.get_by_test_id("access-birth").fill("1980-01-01")
            await patient.get_by_test_id("access-submit").click()
            await expect(patient.get_by_test_id("access-document")).to_have_count(1)
            await check(patient, "patient-documents")

    for name, count in counts.items():
        print(f"axe-core {axe.VERSION}: {name}: {count} violation(s), {len(serious.get(name, []))} serious or critical {kinds[name]}")
    assert len(counts) == 10, counts
    assert not serious, serious


async def test_keyboard_only_from_the_waiting_room_to_closing_the_act(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        doctor: Page = await open_page("red")
        patient: Page = await open_page("blue")
        await patient.goto(demo["patient_link"])
        await accept_notice(patient)
        await patient.get_by_test_id("join").click()

        # from here on the practitioner only presses keys
        await doctor.goto(demo["practitioner_link"])
        await expect(doctor.get_by_test_id("ready")).to_be_visible()
        await tab_to(doctor, "ready")
        await doctor.keyboard.press("Enter")
        await wait_for(lambda: shows(doctor, "blue"))
        await wait_for(lambda: shows(patient, "red"))

        # toggles: Space and Enter both work, the focus stays on the button
        await tab_to(doctor, "mic-toggle")
        await doctor.keyboard.press("Space")
        await expect(doctor.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "false")
        await expect(patient.get_by_test_id("remote-muted")).to_be_visible()
        await doctor.keyboard.press("Enter")
        await expect(doctor.get_by_test_id("mic-toggle")).to_have_attribute("aria-pressed", "true")
        await tab_to(doctor, "cam-toggle")
        await doctor.keyboard.press("Space")
        await expect(doctor.get_by_test_id("cam-toggle")).to_have_attribute("aria-pressed", "false")
        await doctor.keyboard.press("Space")
        await expect(doctor.get_by_test_id("cam-toggle")).to_have_attribute("aria-pressed", "true")

        # the sources dialog keeps the focus inside, both ways, and gives it back on Escape
        await tab_to(doctor, "devices")
        await doctor.keyboard.press("Enter")
        await expect(doctor.get_by_test_id("devices-dialog")).to_be_visible()
        inside = "() => document.querySelector('[data-testid=devices-dialog]').contains(document.activeElement)"
        for key in ("Tab",) * 6 + ("Shift+Tab",) * 6:
            await doctor.keyboard.press(key)
            assert await doctor.evaluate(inside), (key, await focused(doctor))
        await doctor.keyboard.press("Escape")
        await expect(doctor.get_by_test_id("devices-dialog")).to_be_hidden()
        assert await focused(doctor) == "devices"

        # the chat: open, write, send, close with Escape (the focus goes back to its button)
        await tab_to(doctor, "chat-toggle")
        await doctor.keyboard.press("Enter")
        await expect(doctor.get_by_test_id("chat-panel")).to_be_visible()
        await tab_to(doctor, "chat-input")
        await doctor.keyboard.type("Bonjour")
        await doctor.keyboard.press("Enter")
        await expect(patient.get_by_test_id("chat-unread")).to_have_text("1")
        await doctor.keyboard.press("Escape")
        await expect(doctor.get_by_test_id("chat-panel")).to_be_hidden()
        assert await focused(doctor) == "chat-toggle"

        # hang up, then close the act on the closing page
        await tab_to(doctor, "hangup")
        await doctor.keyboard.press("Enter")
        await doctor.wait_for_url("**/closing", timeout=10000)
        await expect(patient.get_by_test_id("ended")).to_be_visible()
        await tab_to(doctor, "close-act")
        await doctor.keyboard.press("Enter")
        await expect(doctor.get_by_test_id("act-closed")).to_be_visible()
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        assert consultation.state.value == "closed"
