"""The servers several nodes share, for tests: PostgreSQL (or a SQLite file) and Redis.

`PostgresServer` runs Debian's PostgreSQL as the `postgres` user in a temporary data
directory, listening on 127.0.0.1 and a socket in that directory; `RedisServer` runs
redis-server on 127.0.0.1 without persistence.  The test session starts each once, on
first use (tests/conftest.py); each test gets its own schema or key prefix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import glob
import os
import pathlib
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import time
import urllib.parse
import uuid
from typing import Any

import psycopg

from clinic import Clinic

from .server import free_port

__all__ = ["KINDS", "PostgresServer", "RedisServer", "TestDatabase", "consultation_now", "free_port", "make"]

#: The engines every storage test runs on.
KINDS = ("sqlite", "postgresql")


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is missing: apt-get install postgresql (scripts/test does)")
    return found[-1]


class PostgresServer:
    """One throw-away PostgreSQL cluster; `start()`, then `stop()` (which deletes it)."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.root = pathlib.Path(tempfile.mkdtemp(prefix="teleconsult-pg-"))
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # tests throw the cluster away: no need to wait for the disk (benchmarks do wait)
        self._fsync = fsync
        self._started = False

    def _as_postgres(self, *args: str) -> None:
        # PostgreSQL refuses to run as root
        command = ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else list(args)
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        shutil.chown(self.root, "postgres")
        data = str(self.root / "data")
        self._as_postgres(_pg_bin("initdb"), "-D", data, "-A", "trust", "-U", "postgres", "--no-sync")
        fsync = "on" if self._fsync else "off"
        self._as_postgres(
            _pg_bin("pg_ctl"), "-D", data, "-l", str(self.root / "log"), "-w", "-t", "30",
            "-o", f"-k {self.root} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync={fsync}",
            "start",
        )
        self._started = True

    def restart(self) -> None:
        """A fast restart: every open connection is cut."""
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-l", str(self.root / "log"),
                          "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        try:
            if self._started:
                # pg_ctl signals the postmaster whose PID is in the data directory
                self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def new_schema(self) -> str:
        """A URL whose connections work in a new, empty schema (one per test)."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url + "?" + urllib.parse.urlencode({"options": f"-csearch_path={name}"})


class RedisServer:
    """One throw-away redis-server, a child process stopped by its PID."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):  # until it answers (bounded: 5 s)
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.05) as probe:
                probe.sendall(b"PING\r\n")
                if probe.recv(16).startswith(b"+PONG"):
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)


@dataclasses.dataclass(frozen=True)
class TestDatabase:
    """Where a test's clinic keeps its data, on one engine."""

    __test__ = False  # not a test class, despite the name
    kind: str
    target: str | pathlib.Path
    documents: pathlib.Path

    async def open(self, invitation_lifetime: datetime.timedelta) -> Clinic:
        return await Clinic.open(self.target, invitation_lifetime=invitation_lifetime,
                                 documents_dir=self.documents)

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run `sql` (`?` placeholders) with the engine's own driver, independent of clinic/."""
        if self.kind == "sqlite":
            pathlib.Path(self.target).parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(sqlite3.connect(self.target)) as conn:
                return conn.execute(sql, params).fetchall()
        with psycopg.connect(str(self.target), autocommit=True) as pg:
            cursor = pg.execute(sql.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description is not None else []

    def tables(self) -> list[str]:
        if self.kind == "sqlite":
            found = self.rows("SELECT name FROM sqlite_master WHERE type = 'table'")
        else:
            found = self.rows("SELECT table_name FROM information_schema.tables"
                              " WHERE table_schema = current_schema() AND table_name <> 'teleconsult_schema'")
        return sorted(str(name) for (name,) in found)


def make(kind: str, tmp_path: pathlib.Path, server: PostgresServer | None) -> TestDatabase:
    documents = tmp_path / "data" / "documents"
    if kind == "sqlite":
        return TestDatabase(kind, tmp_path / "data" / "clinic.sqlite", documents)
    assert server is not None
    return TestDatabase(kind, server.new_schema(), documents)


async def consultation_now(clinic: Clinic) -> str:
    """A practitioner, a patient they may see, and a consultation starting now; its id."""
    practitioner = await clinic.add_practitioner("dr@example.org", "a long password", "Dr")
    patient = await clinic.add_patient("P", "p@example.org", datetime.date(1980, 1, 1))
    await clinic.grant_access(practitioner.id, patient.id)
    consultation, _ = await clinic.schedule_consultation(patient.id, practitioner.id,
                                                         datetime.datetime.now(datetime.UTC))
    return consultation.id
