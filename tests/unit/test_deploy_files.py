"""The files shipped for a production install: the systemd unit is valid, it starts without demo data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "teleconsult.service"


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed on this machine")
    text = UNIT.read_text()
    # the production start command: serve, never --demo
    exec_start = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert " serve --config " in exec_start and "--demo" not in exec_start
    # verify checks that ExecStart exists: point it at this checkout's install
    unit = tmp_path / "teleconsult.service"
    unit.write_text(text.replace("/opt/teleconsult", str(ROOT)))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
