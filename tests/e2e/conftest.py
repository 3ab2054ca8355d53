"""Real Chromium (Debian's) driven by Playwright; each side its own browser and fake camera."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from chromium import CHROMIUM, FLAGS
from y4m import write_y4m

ARTIFACTS = Path(os.environ.get("TELECONSULT_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))


BrowserFactory = Callable[[str], Awaitable[Page]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def open_page(tmp_path: Path) -> AsyncIterator[BrowserFactory]:
    """open_page(colour[, (width, height)]) -> a page in its own Chromium whose fake camera shows `colour`."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/test, which installs it")
    browsers: list[Browser] = []
    async with async_playwright() as pw:
        async def factory(colour: str, viewport: tuple[int, int] = (1024, 700)) -> Page:
            y4m = write_y4m(tmp_path / f"{colour}.y4m", colour)
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, headless=True,
                args=[*FLAGS, f"--use-file-for-fake-video-capture={y4m}"],
            )
            browsers.append(browser)
            context = await browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = await context.new_page()
            page.on("console", lambda m: print(f"[{colour} console] {m.type}: {m.text}"))
            return page
        try:
            yield factory
        finally:
            for b in browsers:
                await b.close()


async def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


# JS run in a page: the colour at the centre of a <video> and its decoded frame count
PROBE_VIDEO = """(testid) => {
  const v = document.querySelector(`[data-testid="${testid}"]`);
  if (!v || !v.videoWidth) return null;
  const c = document.createElement('canvas');
  c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d');
  g.drawImage(v, 0, 0);
  const [r, gr, b] = g.getImageData(c.width >> 1, c.height >> 1, 1, 1).data;
  return {width: v.videoWidth, height: v.videoHeight, r, g: gr, b};
}"""

INBOUND_STATS = """async () => {
  const pc = window.__teleconsult?.call?.pc;
  if (!pc) return null;
  // sections: 0 microphone, 1 camera, 2 screen (docs/protocol.md)
  const out = {video: 0, screen: 0, audio: 0, audioEnergy: 0};
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.mid === '1') out.video = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.mid === '2') out.screen = s.framesDecoded || 0;
    if (s.type === 'inbound-rtp' && s.kind === 'audio') { out.audio = s.packetsReceived || 0; out.audioEnergy = s.totalAudioEnergy || 0; }
  });
  return out;
}"""


def colour_name(px: dict[str, int]) -> str:
    r, g, b = px["r"], px["g"], px["b"]
    if r > 150 and g < 90 and b < 90:
        return "red"
    if b > 150 and r < 90 and g < 90:
        return "blue"
    return f"other({r},{g},{b})"


async def accept_notice(page: Page) -> None:
    """The patient accepts the teleconsultation notice: joining is possible only after (issue 19)."""
    await page.get_by_test_id("consent-accept").click()
