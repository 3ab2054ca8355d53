"""The packages type-check under mypy --strict ([tool.mypy] in pyproject.toml), in every run of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_packages_pass_mypy_strict(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")],
                          cwd=ROOT, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    assert done.stdout.startswith("Success: no issues found in ")
    checked = int(done.stdout.split(" in ")[1].split()[0])
    assert checked >= 100  # every package of [tool.mypy] packages, not an empty selection
