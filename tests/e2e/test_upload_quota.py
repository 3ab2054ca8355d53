"""Issue 17 item 6 in a real browser: a file past the side's quota is refused with a clear message in the chat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.async_api import expect

from helpers.server import running_server
from test_chat import MESSAGES, files_under, send_file
from helpers.call_page import in_call, screenshot

KB = 1024


async def test_the_page_says_when_the_side_has_no_more_room(tmp_path: Path, open_page: Any) -> None:
    overrides = {"documents.max_bytes_per_side": 300 * KB, "documents.max_bytes_per_consultation": 1000 * KB}
    async with running_server(tmp_path / "data", **overrides) as server:
        doctor, patient = await in_call(server, open_page)
        await patient.get_by_test_id("chat-toggle").click()
        await send_file(patient, "premier.pdf", "application/pdf", b"%PDF-1.4\n" + b"a" * (200 * KB))
        # the second one would pass the patient's 300 KiB: the server refuses it and the page says why
        await patient.get_by_test_id("chat-file").set_input_files(
            files=[{"name": "second.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n" + b"b" * (200 * KB)}])
        await expect(patient.get_by_test_id("chat-error")).to_have_text(
            "Vous avez déjà partagé le maximum de fichiers pour cette consultation.", timeout=20000)
        await screenshot(patient, "chat-quota-side")
        assert await doctor.locator(f"{MESSAGES}[data-kind=file]").count() == 1
        assert len(files_under(server.config.data_path / "documents")) == 1
