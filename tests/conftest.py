"""Shared fixtures: every test's media stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sfu import IcePolicy  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def loopback_ice() -> None:
    IcePolicy(addresses=["127.0.0.1"], port_min=42000, port_max=42999).install()


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    # TELECONSULT_TEST_LOOP=uvloop runs every async test on uvloop, the server's default
    # loop (`[media] event_loop`); the default is asyncio's own loop: the suite passes on both
    if os.environ.get("TELECONSULT_TEST_LOOP", "asyncio") == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
