"""The chat between two real Chromium browsers: text, files played inline, history, unread badge, uploads."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import av
import helpers.media_files as media_files
from helpers.call_page import in_call, screenshot, wait_for
from helpers.server import running_server
from playwright.async_api import Page, expect

MB = 1 << 20

MESSAGES = "[data-testid=chat-message]"

MEDIA_STATE = """(testid) => [...document.querySelectorAll(`[data-testid="${testid}"]`)].map((m) => ({
  readyState: m.readyState, duration: m.duration, width: m.videoWidth ?? null, error: m.error ? m.error.code : null,
}))"""


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


async def send_file(page: Page, name: str, mime: str, data: bytes) -> None:
    """Choose a file in the chat's file input and wait until it is shown in this page's chat."""
    before = await page.locator(f"{MESSAGES}[data-kind=file]").count()
    await page.get_by_test_id("chat-file").set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
    await expect(page.locator(f"{MESSAGES}[data-kind=file]")).to_have_count(before + 1, timeout=20000)


async def media_ready(page: Page, testid: str) -> list[dict[str, Any]] | None:
    states: list[dict[str, Any]] = await page.evaluate(MEDIA_STATE, testid)
    ok = states and all(s["readyState"] >= 1 and s["duration"] and s["duration"] > 0 for s in states)
    return states if ok else None


async def rendered_page(tab: Page) -> bool:
    """Whether the tab shows the PDF viewer: its dark toolbar on top, the white page in the middle."""
    with av.open(io.BytesIO(await tab.screenshot())) as png:
        pixels = next(png.decode(video=0)).to_ndarray(format="rgb24")
    height, width, _ = pixels.shape
    middle = pixels[height // 4 : 3 * height // 4, width // 2 - 20 : width // 2 + 20]
    toolbar = pixels[:40]
    return bool((middle > 235).all(axis=2).mean() > 0.5 and toolbar.mean() < 100)


async def test_text_and_files_reach_the_other_side_and_survive_a_reload(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await screenshot(doctor, "chat-01-practitioner-in-call")

        # the patient opens the chat: both sides' arrival is there, as system lines
        await expect(doctor.get_by_test_id("chat-unread")).to_be_hidden()
        await patient.get_by_test_id("chat-toggle").click()
        await expect(patient.get_by_test_id("chat-panel")).to_be_visible()
        await expect(patient.get_by_test_id("chat-toggle")).to_have_attribute("aria-pressed", "true")
        system = patient.locator(f"{MESSAGES}[data-kind=system]")
        await expect(system).to_have_count(2)
        await expect(system.locator(".text")).to_have_text(["Le praticien a rejoint l'appel", "Vous avez rejoint l'appel"])

        # text: shown as text (never as HTML), with its time; unread on the closed side
        await patient.get_by_test_id("chat-input").fill("Bonjour docteur <b>gras</b>\nligne 2")
        await patient.get_by_test_id("chat-send").click()
        await expect(patient.get_by_test_id("chat-input")).to_have_value("")
        await expect(doctor.get_by_test_id("chat-unread")).to_have_text("1")
        await expect(doctor.get_by_test_id("chat-unread")).to_be_visible()
        await expect(doctor.get_by_test_id("chat-toggle")).to_have_attribute("aria-label", "Messages — 1 non lu(s)")

        # files, all made by this test: an image, an audio file, a video, a PDF, a disguised executable
        await send_file(patient, "radio.png", "image/png", media_files.png(160, 120))
        await send_file(patient, "souffle.ogg", "audio/ogg", media_files.ogg_opus(1.0))
        await send_file(patient, "toux.webm", "video/webm", media_files.webm_vp8(1.0))
        await send_file(patient, "compte rendu.pdf", "application/pdf", media_files.pdf())
        await send_file(patient, "photo.png", "image/png", media_files.elf())
        await expect(doctor.get_by_test_id("chat-unread")).to_have_text("6")
        await screenshot(patient, "chat-02-patient-sent-files")

        # the practitioner opens the chat: badge gone, everything shown
        await doctor.get_by_test_id("chat-toggle").click()
        await expect(doctor.get_by_test_id("chat-unread")).to_be_hidden()
        text = doctor.locator(f"{MESSAGES}[data-kind=text]")
        await expect(text).to_have_count(1)
        await expect(text.locator(".text")).to_have_text("Bonjour docteur <b>gras</b>\nligne 2")
        assert await text.locator("b").count() == 0
        assert await text.locator("time").get_attribute("datetime")
        await expect(text.locator(".who")).to_have_text("Patient")

        image = doctor.get_by_test_id("chat-image")
        await expect(image).to_have_count(1)  # the executable named .png is not an image
        await wait_for(lambda: image.evaluate("(img) => img.complete && img.naturalWidth"))
        assert await image.evaluate("(img) => [img.naturalWidth, img.naturalHeight]") == [160, 120]
        assert await wait_for(lambda: media_ready(doctor, "chat-audio"))
        video = await wait_for(lambda: media_ready(doctor, "chat-video"))
        assert video[0]["width"] == 64
        pdf = doctor.get_by_test_id("chat-pdf")
        await expect(pdf).to_have_attribute("target", "_blank")
        await expect(pdf).to_contain_text("compte rendu.pdf")
        href = await pdf.get_attribute("href")
        assert href and "/files/" in href
        fetched = await doctor.evaluate("""async (url) => {
            const r = await fetch(url);
            const body = new Uint8Array(await r.arrayBuffer());
            return {status: r.status, type: r.headers.get('content-type'), disposition: r.headers.get('content-disposition'),
                    start: String.fromCharCode(...body.slice(0, 5))};
        }""", href)
        assert fetched == {"status": 200, "type": "application/pdf", "start": "%PDF-",
                           "disposition": "inline; filename=\"compte rendu.pdf\"; filename*=UTF-8''compte%20rendu.pdf"}
        # the PDF opens in a new tab, in the browser's own viewer, despite the file's sandbox CSP
        async with doctor.context.expect_page() as opened:
            await pdf.click()
        tab = await opened.value
        await tab.wait_for_load_state()
        assert tab.url.endswith(href)
        assert await tab.evaluate("() => document.contentType") == "application/pdf"
        await wait_for(lambda: rendered_page(tab), timeout=20)
        await screenshot(tab, "chat-03b-pdf-tab")
        await tab.close()
        download = doctor.get_by_test_id("chat-download")
        await expect(download).to_have_count(1)
        await expect(download).to_have_attribute("download", "photo.png")
        assert await doctor.locator(f"{MESSAGES}[data-kind=file]").count() == 5
        await screenshot(doctor, "chat-03-practitioner-sees-files")

        # a reload: the whole conversation again, nothing counted as unread
        shown = await doctor.locator(MESSAGES).count()
        await doctor.reload()
        await expect(doctor.get_by_test_id("remote-video")).to_be_visible()
        await expect(doctor.locator(MESSAGES)).to_have_count(shown)
        await expect(doctor.get_by_test_id("chat-unread")).to_be_hidden()
        await doctor.get_by_test_id("chat-toggle").click()
        await expect(doctor.locator(f"{MESSAGES}[data-kind=text] .text")).to_have_text("Bonjour docteur <b>gras</b>\nligne 2")
        await expect(doctor.get_by_test_id("chat-image")).to_have_count(1)

        # English: the same history, translated in the browser
        await doctor.get_by_test_id("lang-select").select_option("en")
        await expect(doctor.locator(f"{MESSAGES}[data-kind=system] .text")).to_have_text(
            ["You joined the call", "The patient joined the call"])
        await expect(doctor.get_by_test_id("chat-pdf")).to_contain_text("Open")

        # the practitioner answers: the patient (panel open) reads it, no badge
        await doctor.get_by_test_id("chat-input").fill("Merci, je regarde.")
        await doctor.get_by_test_id("chat-input").press("Enter")
        await expect(patient.locator(f"{MESSAGES}[data-kind=text]").last).to_contain_text("Merci, je regarde.")
        await expect(patient.locator(f"{MESSAGES}[data-kind=text]").last.locator(".who")).to_have_text("Praticien")
        await expect(patient.get_by_test_id("chat-unread")).to_be_hidden()
        await screenshot(patient, "chat-04-patient-conversation")
        # Escape closes the panel and gives the focus back to its button
        await patient.get_by_test_id("chat-input").press("Escape")
        await expect(patient.get_by_test_id("chat-panel")).to_be_hidden()
        await expect(patient.get_by_test_id("chat-toggle")).to_be_focused()
        await expect(patient.get_by_test_id("chat-toggle")).to_have_attribute("aria-pressed", "false")


GROS = """(size) => {
  const input = document.querySelector('[data-testid="chat-file"]');
  const data = new DataTransfer();
  data.items.add(new File([new Uint8Array(size)], 'gros.bin'));
  input.files = data.files;
  input.dispatchEvent(new Event('change', {bubbles: true}));
}"""


async def test_upload_progress_cancel_and_size_limit(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data", **{"documents.max_upload_bytes": 6 * MB}) as server:
        doctor, patient = await in_call(server, open_page)
        folder = server.config.data_path / "documents"
        await patient.get_by_test_id("chat-toggle").click()

        # a slow uplink (Chromium's own throttling), so the upload can be watched and cancelled
        cdp = await patient.context.new_cdp_session(patient)
        await cdp.send("Network.enable")
        await cdp.send("Network.emulateNetworkConditions",
                       {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 512 * 1024})
        await patient.evaluate(GROS, 5 * MB)
        await expect(patient.get_by_test_id("chat-upload")).to_be_visible()
        await wait_for(lambda: patient.get_by_test_id("chat-progress").evaluate("(p) => p.value > 0.05"))
        await screenshot(patient, "chat-05-upload-progress")
        # the server is writing it under a temporary name
        await wait_for(lambda: asyncio.sleep(0, [p for p in files_under(folder) if p.name.endswith(".part")]))
        await patient.get_by_test_id("chat-upload-cancel").click()
        await expect(patient.get_by_test_id("chat-upload")).to_be_hidden()
        await expect(patient.get_by_test_id("chat-error")).to_have_text("Envoi annulé.")
        # nothing left behind, nothing shown
        await wait_for(lambda: asyncio.sleep(0, not files_under(folder)))
        assert await doctor.locator(f"{MESSAGES}[data-kind=file]").count() == 0
        assert await server.clinic.list_documents(consultation_id=(await server.demo())["consultation_id"]) == []
        await cdp.send("Network.emulateNetworkConditions",
                       {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})

        # over the limit: refused in the page before sending a byte ...
        await patient.evaluate(GROS, 7 * MB)
        await expect(patient.get_by_test_id("chat-error")).to_have_text("Ce fichier est trop volumineux : 6 Mo au maximum.")
        await expect(patient.get_by_test_id("chat-upload")).to_be_hidden()
        # ... and by the server when a page does not check (413, the same clear message)
        await patient.evaluate("() => { window.__teleconsultChat.maxUpload = 1e12; }")
        await patient.evaluate(GROS, 7 * MB)
        await expect(patient.get_by_test_id("chat-error")).to_have_text(
            "Ce fichier est trop volumineux : 6 Mo au maximum.", timeout=20000)
        await screenshot(patient, "chat-06-too-large")
        await wait_for(lambda: asyncio.sleep(0, not files_under(folder)))

        # the chat still works afterwards
        await send_file(patient, "note.txt", "text/plain", "Ordonnance à renouveler".encode())
        await expect(doctor.get_by_test_id("chat-unread")).to_have_text("1")
        assert len(files_under(folder)) == 1
