"""Shared fixtures: every test's media stays on 127.0.0.1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sfu import IcePolicy  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def loopback_ice() -> None:
    IcePolicy(addresses=["127.0.0.1"], port_min=42000, port_max=42999).install()
