"""The whiteboard between two real Chromium pages of different sizes: strokes, a PDF page, the pointer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from helpers.call_page import enter_call, screenshot, wait_for
from helpers.pdfgen import write_pdf
from helpers.server import running_server
from playwright.async_api import Page, expect

DOCTOR_SIZE = (1280, 900)
PATIENT_SIZE = (900, 640)

# JS: the colour at a fraction (fx, fy) of the whiteboard canvas, averaged over a 5x5 pixel patch
PIXEL = """([fx, fy]) => {
  const c = document.querySelector('[data-testid="whiteboard-canvas"]');
  const x = Math.round(fx * (c.width - 1)), y = Math.round(fy * (c.height - 1));
  const d = c.getContext('2d').getImageData(Math.max(0, x - 2), Math.max(0, y - 2), 5, 5).data;
  let r = 0, g = 0, b = 0;
  for (let i = 0; i < d.length; i += 4) { r += d[i]; g += d[i + 1]; b += d[i + 2]; }
  const n = d.length / 4;
  return [Math.round(r / n), Math.round(g / n), Math.round(b / n)];
}"""


async def in_call(server: Any, open_page: Any) -> tuple[Page, Page]:
    # two window sizes: the board's fractions must line up across them
    return await enter_call(await server.demo(), await open_page("red", DOCTOR_SIZE),
                             await open_page("blue", PATIENT_SIZE))


async def _open_board(doctor: Page, patient: Page) -> None:
    await doctor.get_by_test_id("whiteboard-toggle").click()
    for page in (doctor, patient):
        await expect(page.get_by_test_id("whiteboard-canvas")).to_be_visible()
        await expect(page.get_by_test_id("whiteboard-toggle")).to_have_attribute("aria-pressed", "true")


async def _box(page: Page) -> dict[str, float]:
    box = await page.get_by_test_id("whiteboard-canvas").bounding_box()
    assert box is not None
    return box


async def _draw(page: Page, points: list[tuple[float, float]]) -> None:
    """A stroke through these board fractions, with the real mouse."""
    box = await _box(page)
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    await page.mouse.move(*xy[0])
    await page.mouse.down()
    for x, y in xy[1:]:
        await page.mouse.move(x, y, steps=8)
    await page.mouse.up()


def _dark(px: list[int]) -> bool:
    return max(px) < 100


def _reddish(px: list[int]) -> bool:
    return px[0] > 150 and px[1] < 110 and px[2] < 110


def _white(px: list[int]) -> bool:
    return min(px) > 235


async def _pixel(page: Page, fx: float, fy: float) -> list[int]:
    px: list[int] = await page.evaluate(PIXEL, [fx, fy])
    return px


async def test_a_stroke_drawn_on_one_side_appears_at_the_same_place_on_the_other(tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await _open_board(doctor, patient)
        d_box, p_box = await _box(doctor), await _box(patient)
        assert abs(d_box["width"] - p_box["width"]) > 50, "the two boards should have different sizes on screen"
        # same aspect ratio whatever the window: 4:3 without a background
        for box in (d_box, p_box):
            assert abs(box["width"] / box["height"] - 4 / 3) < 0.02, box

        # the stroke streams while it is drawn: the patient sees its start before the mouse is released
        assert _white(await _pixel(patient, 0.5, 0.5))
        box = d_box
        await doctor.mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.5 * box["height"])
        await doctor.mouse.down()
        await doctor.mouse.move(box["x"] + 0.5 * box["width"], box["y"] + 0.5 * box["height"], steps=10)
        await wait_for(lambda: _is(patient, 0.35, 0.5, _reddish))
        assert await doctor.evaluate("() => document.querySelector('[data-testid=whiteboard-canvas]') !== null")
        # then the whole line (red is the default pen)
        await doctor.mouse.move(box["x"] + 0.8 * box["width"], box["y"] + 0.5 * box["height"], steps=10)
        await doctor.mouse.up()
        for fx in (0.25, 0.5, 0.75):
            await wait_for(lambda fx=fx: _is(patient, fx, 0.5, _reddish))
        # nothing drawn away from the line
        assert _white(await _pixel(patient, 0.5, 0.2))
        assert _white(await _pixel(patient, 0.5, 0.8))
        await screenshot(doctor, "40-whiteboard-doctor-drew")
        await screenshot(patient, "41-whiteboard-patient-sees-stroke")

        # the patient draws a vertical line in blue
        await patient.get_by_test_id("whiteboard-color-blue").click()
        await _draw(patient, [(0.3, 0.2), (0.3, 0.4)])
        await wait_for(lambda: _is(doctor, 0.3, 0.3, lambda px: px[2] > 150 and px[0] < 100))

        # a reload keeps both strokes (state from the server)
        await patient.reload()
        await expect(patient.get_by_test_id("whiteboard-canvas")).to_be_visible(timeout=20000)
        await wait_for(lambda: _is(patient, 0.5, 0.5, _reddish))
        await wait_for(lambda: _is(patient, 0.3, 0.3, lambda px: px[2] > 150 and px[0] < 100))

        # undo removes only one's own stroke: the patient's undo leaves the practitioner's line
        await expect(patient.get_by_test_id("whiteboard-undo")).to_be_enabled()
        await patient.get_by_test_id("whiteboard-undo").click()
        for page in (doctor, patient):
            await wait_for(lambda page=page: _is(page, 0.3, 0.3, _white))
            assert _reddish(await _pixel(page, 0.5, 0.5))
        await expect(patient.get_by_test_id("whiteboard-undo")).to_be_disabled()
        await expect(patient.get_by_test_id("whiteboard-redo")).to_be_enabled()
        # and redo brings it back
        await patient.get_by_test_id("whiteboard-redo").click()
        await wait_for(lambda: _is(doctor, 0.3, 0.3, lambda px: px[2] > 150))

        # clear asks first; cancel keeps everything, confirm clears both sides
        await patient.get_by_test_id("whiteboard-clear").click()
        await expect(patient.get_by_test_id("whiteboard-clear-dialog")).to_be_visible()
        await patient.get_by_test_id("whiteboard-clear-cancel").click()
        assert _reddish(await _pixel(doctor, 0.5, 0.5))
        await patient.get_by_test_id("whiteboard-clear").click()
        await patient.get_by_test_id("whiteboard-clear-confirm").click()
        await wait_for(lambda: _is(doctor, 0.5, 0.5, _white))
        # the patient's undo of the clear brings both lines back
        await patient.get_by_test_id("whiteboard-undo").click()
        await wait_for(lambda: _is(doctor, 0.5, 0.5, _reddish))
        await wait_for(lambda: _is(doctor, 0.3, 0.3, lambda px: px[2] > 150))

        # the eraser removes the stroke it touches
        await doctor.get_by_test_id("whiteboard-eraser").click()
        await _draw(doctor, [(0.5, 0.45), (0.5, 0.55)])
        await wait_for(lambda: _is(patient, 0.5, 0.5, _white))
        assert _is_sync(await _pixel(patient, 0.3, 0.3), lambda px: px[2] > 150)


async def _pointer_near(page: Page, fx: float, fy: float) -> bool:
    box = await _box(page)
    b = await page.get_by_test_id("remote-pointer").bounding_box()
    return b is not None and abs(b["x"] + b["width"] / 2 - (box["x"] + fx * box["width"])) <= 3 \
        and abs(b["y"] + b["height"] / 2 - (box["y"] + fy * box["height"])) <= 3


def _is_sync(px: list[int], test: Any) -> bool:
    return bool(test(px))


async def _is(page: Page, fx: float, fy: float, test: Any) -> bool:
    return bool(test(await _pixel(page, fx, fy)))


async def test_a_pdf_page_and_the_pointer_line_up_on_both_sides(tmp_path: Path, open_page: Any) -> None:
    # a black rectangle in the middle of page 1, another in the bottom left of page 2 (points, origin bottom-left)
    pdf = write_pdf(tmp_path / "schema.pdf", [(100, 100, 200, 100), (0, 0, 80, 60)], width=400, height=300)
    async with running_server(tmp_path / "data") as server:
        doctor, patient = await in_call(server, open_page)
        await _open_board(doctor, patient)
        await patient.get_by_test_id("whiteboard-file").set_input_files(str(pdf))
        # the practitioner sees the rendered page: dark in the rectangle, white outside
        await wait_for(lambda: _is(doctor, 0.5, 0.5, _dark), timeout=30)
        assert _white(await _pixel(doctor, 0.1, 0.1))
        await wait_for(lambda: _is(patient, 0.5, 0.5, _dark))
        await expect(doctor.get_by_test_id("whiteboard-page")).to_have_text("Page 1 sur 2")
        await screenshot(doctor, "42-whiteboard-pdf-page")

        # count the pointer messages the practitioner gets, to print the rate the browser sends
        await doctor.evaluate("""() => { window.__pointers = 0;
          window.__teleconsult.client.addEventListener('pointer', () => { window.__pointers += 1; }); }""")
        # the pointer: the patient points at a known place, the practitioner sees it at the same fraction
        p_box = await _box(patient)
        for fx, fy in ((0.25, 0.75), (0.6, 0.3)):
            await patient.mouse.move(p_box["x"] + fx * p_box["width"], p_box["y"] + fy * p_box["height"], steps=4)
            pointer = doctor.get_by_test_id("remote-pointer")
            await expect(pointer).to_be_visible()
            await expect(pointer).to_contain_text("Patient")
            d_box = await _box(doctor)
            want = (d_box["x"] + fx * d_box["width"], d_box["y"] + fy * d_box["height"])

            async def at_place(want: tuple[float, float] = want) -> bool:
                b = await doctor.get_by_test_id("remote-pointer").bounding_box()
                return b is not None and abs(b["x"] + b["width"] / 2 - want[0]) <= 3 and abs(b["y"] + b["height"] / 2 - want[1]) <= 3
            await wait_for(at_place, timeout=10)
        await screenshot(doctor, "43-whiteboard-remote-pointer")
        # a long sweep of mouse moves: the browser throttles (~25/s), it does not send one per move
        await doctor.evaluate("() => { window.__pointers = 0; }")
        start = await patient.evaluate("() => performance.now()")
        moves = 120
        for i in range(moves):
            await patient.mouse.move(p_box["x"] + (0.1 + 0.8 * i / moves) * p_box["width"], p_box["y"] + 0.5 * p_box["height"])
        elapsed = (await patient.evaluate("() => performance.now()") - start) / 1000
        await wait_for(lambda: _pointer_near(doctor, 0.9 - 0.8 / moves, 0.5))
        received = await doctor.evaluate("() => window.__pointers")
        print(f"pointer: {moves} mouse moves over {elapsed:.2f} s -> {received} positions relayed "
              f"({received / elapsed:.1f}/s)")
        assert 1 <= received <= moves
        # a burst of 100 pointer events 5 ms apart: throttled to about one per 40 ms
        await doctor.evaluate("() => { window.__pointers = 0; }")
        burst_ms = await patient.evaluate("""async () => {
          const c = document.querySelector('[data-testid="whiteboard-canvas"]');
          const r = c.getBoundingClientRect();
          const t0 = performance.now();
          for (let i = 0; i < 100; i++) {
            c.dispatchEvent(new PointerEvent('pointermove', {bubbles: true, clientX: r.left + r.width * (0.1 + 0.008 * i), clientY: r.top + r.height / 2}));
            await new Promise((ok) => setTimeout(ok, 5));
          }
          return performance.now() - t0;
        }""")
        await wait_for(lambda: _pointer_near(doctor, 0.1 + 0.008 * 99, 0.5))
        received = await doctor.evaluate("() => window.__pointers")
        print(f"pointer: 100 events over {burst_ms:.0f} ms -> {received} positions sent ({received * 1000 / burst_ms:.1f}/s)")
        assert 1 <= received < 100
        # leaving the board hides it
        await patient.mouse.move(5, 5)
        await expect(doctor.get_by_test_id("remote-pointer")).to_be_hidden()

        # page 2, in step on both sides; the rectangle is bottom left there
        await doctor.get_by_test_id("whiteboard-next").click()
        for page in (doctor, patient):
            await expect(page.get_by_test_id("whiteboard-page")).to_have_text("Page 2 sur 2")
            await wait_for(lambda page=page: _is(page, 0.05, 0.95, _dark))
            assert _white(await _pixel(page, 0.5, 0.5))
        # a stroke on page 2 stays with page 2
        await _draw(doctor, [(0.6, 0.5), (0.9, 0.5)])
        await wait_for(lambda: _is(patient, 0.75, 0.5, _reddish))
        await patient.get_by_test_id("whiteboard-prev").click()
        await expect(doctor.get_by_test_id("whiteboard-page")).to_have_text("Page 1 sur 2")
        await wait_for(lambda: _is(doctor, 0.5, 0.5, _dark))
        assert _white(await _pixel(doctor, 0.85, 0.5)), "the stroke of page 2 is not on page 1"

        # the practitioner saves the board as a document; the patient has no such button
        await expect(patient.get_by_test_id("whiteboard-save")).to_be_hidden()
        await doctor.get_by_test_id("whiteboard-save").click()
        await expect(doctor.get_by_test_id("whiteboard-status")).to_contain_text("enregistré")
        (hub,) = server.hubs.hubs()
        documents = await server.clinic.list_documents(consultation_id=hub.id)
        assert [(d.source, d.media_type) for d in documents] == [("whiteboard", "image/png")]

        # a file that is not an image or PDF: refused with a plain message, the page stays
        bad = tmp_path / "notes.png"
        bad.write_text("not a picture at all", encoding="utf-8")
        await patient.get_by_test_id("whiteboard-file").set_input_files(str(bad))
        await expect(patient.get_by_test_id("whiteboard-status")).to_contain_text("Seules les images")
        await expect(doctor.get_by_test_id("whiteboard-page")).to_have_text("Page 1 sur 2")
