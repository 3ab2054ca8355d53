"""Helpers shared by the benchmark scripts for the servers they start."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def tail(path: Path | None, n: int = 30) -> str:
    """The last lines of a log file, for an error message."""
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def wait_http(url: str, proc: subprocess.Popen[Any], timeout: float = 30.0, log: Path | None = None) -> None:
    """Wait until `url` answers 200; fail at once if `proc` exits, or after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode}:\n{tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not answering after {timeout} s:\n{tail(log)}")


def stop(proc: subprocess.Popen[Any] | None) -> None:
    """Stop one process we started, by its PID: terminate, then kill."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
