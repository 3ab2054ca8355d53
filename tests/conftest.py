"""Shared fixtures: every test's media stays on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.databases import KINDS, PostgresServer, RedisServer, TestDatabase, make  # noqa: E402
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
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the whole session, started on first use (tests/helpers/databases.py)."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=KINDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> TestDatabase:
    """The clinic's storage on each engine: a SQLite file, then a fresh PostgreSQL schema."""
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    return make(request.param, tmp_path, server)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server for the whole session, started on first use."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
