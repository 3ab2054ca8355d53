"""The running server checkpoints the audit chain's head outside the database (issue 19 item 2)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from clinic import audit
from helpers.server import running_server


async def test_the_server_writes_the_head_to_a_file_and_the_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="signaling.audit_checkpoints")
    async with running_server(tmp_path / "data", **{"audit.checkpoint_seconds": 1.0}) as server:
        await server.clinic.practice.audit("operator", None, "login")
        await server.clinic.practice.audit("operator", None, "logout")
    # the last one is written at shutdown: it names the head
    checkpoints = audit.read_checkpoints(server.config.audit_checkpoints_path)
    assert checkpoints and checkpoints[-1].seq == 2
    assert f"Audit checkpoint: entry 2, head {checkpoints[-1].hash}" in caplog.text
