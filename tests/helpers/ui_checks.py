"""What the interface tests look at: screenshots at several widths, the toolbar's row, the focus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import Page

from helpers.call_page import ARTIFACTS

SCREENSHOTS = ARTIFACTS / "screenshots"
# the widths kept as pictures, each with a common height for that kind of screen
SHOT_SIZES = ((390, 844), (1024, 768), (1440, 900))
ROW_WIDTHS = (360, 390, 1024, 1440, 1920)

TOOLBAR_ROW = """() => {
  const bar = document.querySelector("#call .toolbar");
  const boxes = [...bar.querySelectorAll("button")].filter((b) => b.getClientRects().length > 0)
    .map((b) => { const r = b.getBoundingClientRect(); return {id: b.dataset.testid, top: r.top, left: r.left, right: r.right}; });
  return {boxes, innerWidth, scrollWidth: document.documentElement.scrollWidth};
}"""

FOCUSED = "() => document.activeElement?.closest('[data-testid]')?.dataset.testid ?? document.activeElement?.tagName"


async def shoot(page: Page, name: str, *, full_page: bool = False) -> list[Path]:
    """A PNG of the page at each of SHOT_SIZES; the viewport is left at the widest."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for width, height in SHOT_SIZES:
        await page.set_viewport_size({"width": width, "height": height})
        await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        # nothing wider than the window: no sideways scrolling at any width
        assert await page.evaluate("() => document.documentElement.scrollWidth <= innerWidth"), (name, width)
        path = SCREENSHOTS / f"{name}-{width}.png"
        await page.screenshot(path=str(path), full_page=full_page)
        paths.append(path)
    return paths


async def toolbar_on_one_row(page: Page, widths: tuple[int, ...] = ROW_WIDTHS, height: int = 800) -> dict[int, int]:
    """At each width: every visible toolbar button on the same row, inside the window; returns the button counts."""
    counts = {}
    for width in widths:
        await page.set_viewport_size({"width": width, "height": height})
        await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        row: dict[str, Any] = await page.evaluate(TOOLBAR_ROW)
        boxes = row["boxes"]
        tops = {round(b["top"]) for b in boxes}
        assert len(tops) == 1, (width, boxes)  # one row: the same top for every button
        assert all(b["left"] >= 0 and b["right"] <= width + 0.5 for b in boxes), (width, boxes)
        assert row["scrollWidth"] <= row["innerWidth"], (width, row)  # no sideways scrolling
        counts[width] = len(boxes)
    return counts


async def focused(page: Page) -> str | None:
    value: str | None = await page.evaluate(FOCUSED)
    return value


async def tab_to(page: Page, testid: str, *, limit: int = 60, key: str = "Tab") -> None:
    """Press Tab (or Shift+Tab) until the control with this testid has the focus."""
    for _ in range(limit):
        if await focused(page) == testid:
            return
        await page.keyboard.press(key)
    raise AssertionError(f"{testid} never got the focus in {limit} presses of {key} (last: {await focused(page)})")
