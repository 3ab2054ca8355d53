"""Two browsers in a call: entering it, waiting, reading what a page shows."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from playwright.async_api import Page

ARTIFACTS = Path(os.environ.get("TELECONSULT_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))


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


async def wait_for(predicate: Any, timeout: float = 20.0, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = await predicate()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met in {timeout} s (last value: {last!r})")


async def remote_colour(page: Page) -> str | None:
    px = await page.evaluate(PROBE_VIDEO, "remote-video")
    return colour_name(px) if px else None


async def shows(page: Page, colour: str) -> bool:
    """Whether the remote video shows `colour` now (the first frames may still be black)."""
    return await remote_colour(page) == colour


async def frames_decoded(page: Page) -> int:
    stats = await page.evaluate(INBOUND_STATS)
    return int(stats["video"]) if stats else 0


async def more_frames(page: Page, before: int) -> bool:
    return await frames_decoded(page) > before + 10


async def in_call(server: Any, open_page: Any) -> tuple[Page, Page]:
    return await enter_call(await server.demo(), await open_page("red"), await open_page("blue"))


async def log_in(page: Page, base_url: str, email: str, password: str) -> None:
    """A practitioner logs in through the login page and lands on the day list."""
    await page.goto(base_url + "/login")
    await page.get_by_test_id("login-email").fill(email)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_url(base_url + "/")


async def accept_notice(page: Page) -> None:
    """The patient accepts the teleconsultation notice: joining is possible only after (issue 19)."""
    await page.get_by_test_id("consent-accept").click()


async def enter_call(demo: dict[str, Any], doctor: Page, patient: Page) -> tuple[Page, Page]:
    """Both sides open their link and enter the call; returns once each shows the other's camera."""
    await doctor.goto(demo["practitioner_link"])
    await patient.goto(demo["patient_link"])
    await accept_notice(patient)
    await doctor.get_by_test_id("join").click()
    await patient.get_by_test_id("ready").click()
    await wait_for(lambda: shows(doctor, "blue"))
    await wait_for(lambda: shows(patient, "red"))
    return doctor, patient


async def screen_frames(page: Page) -> int:
    stats = await page.evaluate(INBOUND_STATS)
    return int(stats["screen"]) if stats else 0

# the longest wait between two pictures the remote video showed, by the browser's clock
WATCH_FREEZES = """() => {
  const v = document.querySelector('[data-testid="remote-video"]');
  window.__longestGap = 0;
  let last = null;
  const tick = (now) => {
    if (last !== null) window.__longestGap = Math.max(window.__longestGap, now - last);
    last = now;
    v.requestVideoFrameCallback(tick);
  };
  v.requestVideoFrameCallback(tick);
}"""
