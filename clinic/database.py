"""The clinic's database: SQLite (the embedded default) or PostgreSQL, behind one small API.

Every clinic module talks to a `Database`: `execute()` with `?` placeholders,
`executemany()`, and `transaction()`, a write transaction that excludes every
other writer (SQLite's BEGIN IMMEDIATE; on PostgreSQL a transaction-level
advisory lock), so the same read-then-write code behaves the same on both.
"""

from __future__ import annotations

import abc
import contextlib
import os
import pathlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final, Literal, Protocol

from .datafiles import PRIVATE_DIR, PRIVATE_FILE, create_private_file
from .errors import ConstraintViolated

#: How long a writer waits for another writer's lock before failing (ms).
BUSY_TIMEOUT_MS: Final = 5000

Dialect = Literal["sqlite", "postgresql"]


class Row(Protocol):
    """A result row: by position or by column name (sqlite3.Row and clinic/postgres.py's rows)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> list[str]: ...


class Cursor(Protocol):
    """What execute() returns: the rows of a query, or how many rows a write touched."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


def is_url(target: str | pathlib.Path) -> bool:
    """True when `target` names a PostgreSQL server rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class Database(abc.ABC):
    """One clinic database; used from the clinic's worker thread."""

    dialect: Dialect

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement (`?` placeholders); a refused constraint raises ConstraintViolated."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per parameter row."""

    @property
    @abc.abstractmethod
    def in_transaction(self) -> bool:
        """A write transaction of this thread is open."""

    @abc.abstractmethod
    def transaction(self) -> contextlib.AbstractContextManager[Database]:
        """A write transaction: commit on success, else roll back; writers take turns."""

    @abc.abstractmethod
    def run_script(self, script: str) -> None:
        """Run a migration script (several statements, no parameters) in the open transaction."""

    @abc.abstractmethod
    def tables(self) -> list[str]:
        """The clinic's tables, in creation order (parents before the tables referring to them)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection(s); safe to call twice."""


class SqliteDatabase(Database):
    """A SQLite file in WAL mode, one connection (the worker thread's)."""

    dialect: Dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            raise ConstraintViolated(str(exc)) from exc

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.conn.executemany(sql, rows)
        except sqlite3.IntegrityError as exc:
            raise ConstraintViolated(str(exc)) from exc

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        # IMMEDIATE takes the write lock up front, so no read-to-write upgrade deadlock
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
            self.execute("COMMIT")
        except BaseException:
            # a failed COMMIT can leave the transaction open, so check before undoing
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def run_script(self, script: str) -> None:
        # executescript() would COMMIT on its own, breaking one-transaction-per-migration
        for statement in statements(script):
            self.conn.execute(statement)

    def tables(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            " ORDER BY rowid"
        ).fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        self.conn.close()


def statements(script: str) -> Iterator[str]:
    """Split a SQLite script into single statements (one per execute())."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip():
        raise ValueError(f"incomplete SQL statement at end of migration: {pending.strip()!r}")


def connect(path: pathlib.Path) -> SqliteDatabase:
    """Open (creating if needed) the SQLite file with our pragmas set."""
    path.parent.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    # SQLite would create the file 0644; its WAL and SHM files take the database's mode
    create_private_file(path)
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if extra.exists():
            os.chmod(extra, PRIVATE_FILE)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, see transaction()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers proceed while one writer commits
        mode = _journal_wal(conn)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not enable WAL journal (got {mode!r})")
    except BaseException:
        conn.close()
        raise
    return SqliteDatabase(conn)


def _journal_wal(conn: sqlite3.Connection) -> object:
    # Switching a new file to WAL needs an exclusive lock, and SQLite may answer "database is locked" at once,
    # without its busy handler, when another connection switches it at the same moment (two nodes starting
    # together on an empty file: a CI run failed so).  Retried for up to the busy timeout.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def transaction(db: Database) -> contextlib.AbstractContextManager[Database]:
    """Run the block in one write transaction: commit on success, else roll back."""
    return db.transaction()


class _ProbeDone(Exception):
    """Raised inside the probe's transaction so that it rolls back."""


def probe_write(db: Database) -> None:
    """Take the write lock and write (a table, rolled back): raises when the database cannot be written."""
    try:
        with db.transaction():
            db.execute("CREATE TABLE write_probe (x INTEGER)")
            raise _ProbeDone
    except _ProbeDone:
        pass
