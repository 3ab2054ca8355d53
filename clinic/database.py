"""SQLite connection setup and explicit transactions."""

from __future__ import annotations

import contextlib
import pathlib
import sqlite3
from collections.abc import Iterator
from typing import Final

#: How long a writer waits for another process's lock before failing (ms).
BUSY_TIMEOUT_MS: Final = 5000


def connect(path: pathlib.Path) -> sqlite3.Connection:
    """Open (creating if needed) the database file with our pragmas set."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, see transaction()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers proceed while one writer commits
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not enable WAL journal (got {mode!r})")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction: commit on success, else roll back."""
    # IMMEDIATE takes the write lock up front, so no read-to-write upgrade deadlock
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        # a failed COMMIT can leave the transaction open, so check before undoing
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def probe_write(conn: sqlite3.Connection) -> None:
    """Take the write lock and write (a table, rolled back): raises when the database cannot be written."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE write_probe (x INTEGER)")
    finally:
        conn.execute("ROLLBACK")
