"""The chat panel of a call page as a person uses it."""

from __future__ import annotations

from playwright.async_api import Page, expect

MESSAGES = "[data-testid=chat-message]"


async def send_file(page: Page, name: str, mime: str, data: bytes) -> None:
    """Choose a file in the chat's file input and wait until it is shown in this page's chat."""
    before = await page.locator(f"{MESSAGES}[data-kind=file]").count()
    await page.get_by_test_id("chat-file").set_input_files(files=[{"name": name, "mimeType": mime, "buffer": data}])
    await expect(page.locator(f"{MESSAGES}[data-kind=file]")).to_have_count(before + 1, timeout=20000)
