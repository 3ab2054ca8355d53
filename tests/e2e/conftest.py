"""Real Chromium (Debian's) driven by Playwright; each side its own browser and fake camera."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from helpers.chromium import CHROMIUM, FLAGS, launch_page
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


