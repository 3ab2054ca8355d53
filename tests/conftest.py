"""Shared fixtures: every test's media stays on 127.0.0.1."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers.databases import KINDS, PostgresServer, RedisServer, TestDatabase, make  # noqa: E402
from sfu import IcePolicy  # noqa: E402


@pytest.fixture(autouse=True, scope="session")
def loopback_ice() -> None:
    IcePolicy(addresses=["127.0.0.1"], port_min=42000, port_max=42999).install()


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
