"""Real Chromium (Debian's) driven by Playwright; each side its own browser and fake camera."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiortc import rtcrtpreceiver
from aiortc.codecs import h264, opus, vpx
from helpers.chromium import CHROMIUM, FLAGS, launch_page
from helpers.turn import Coturn, running_coturn
from helpers.y4m import write_y4m
from playwright.async_api import Browser, Page, async_playwright

BrowserFactory = Callable[[str], Awaitable[Page]]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "e2e" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def open_page(tmp_path: Path) -> AsyncIterator[BrowserFactory]:
    """open_page(colour[, (width, height)][, busy=True]) -> a page in its own Chromium whose fake
    camera shows `colour` (busy: with a noisy band that needs a real bitrate, y4m.write_y4m)."""
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/test, which installs it")
    browsers: list[Browser] = []
    violations: list[str] = []
    async with async_playwright() as pw:
        async def factory(colour: str, viewport: tuple[int, int] = (1024, 700), busy: bool = False) -> Page:
            y4m = write_y4m(tmp_path / f"{colour}.y4m", colour, busy=busy)
            return await launch_page(pw, browsers, [*FLAGS, f"--use-file-for-fake-video-capture={y4m}"],
                                     name=colour, viewport=viewport, csp_violations=violations)

        # a test that provokes a violation on purpose reads (and clears) this list
        factory.csp_violations = violations  # type: ignore[attr-defined]
        try:
            yield factory
        finally:
            for b in browsers:
                await b.close()
    # every browser test doubles as a CSP test: the app's pages must never trip their own policy
    assert not violations, "Content-Security-Policy violations:\n" + "\n".join(violations)




@pytest.fixture
def coturn(tmp_path: Path) -> Iterator[Coturn]:
    """coturn on loopback with a fresh shared secret (tests/helpers/turn.py)."""
    with running_coturn(tmp_path) as server:
        yield server


@pytest.fixture
def codec_spy(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts every decoder made and every frame encoded or packed in this process."""
    counts: Counter[str] = Counter()

    def count(cls: type, method: str, key: str) -> None:
        original = getattr(cls, method)

        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            counts[key] += 1
            return original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, wrapper)

    for cls in (vpx.Vp8Decoder, h264.H264Decoder, opus.OpusDecoder):
        count(cls, "__init__", "decoder")
    for cls in (vpx.Vp8Encoder, h264.H264Encoder, opus.OpusEncoder):
        count(cls, "encode", "encode")
    count(vpx.Vp8Encoder, "pack", "pack-video")
    count(opus.OpusEncoder, "pack", "pack-audio")
    original_get_decoder = rtcrtpreceiver.get_decoder

    def get_decoder(codec: Any) -> Any:
        counts["get_decoder"] += 1
        return original_get_decoder(codec)

    monkeypatch.setattr(rtcrtpreceiver, "get_decoder", get_decoder)
    return counts
