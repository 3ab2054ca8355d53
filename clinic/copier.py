"""Copy a whole clinic database to another engine (a one-node SQLite site moving to PostgreSQL).

Blocking: run it in a thread, with the site stopped (nothing may write to the source).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any, Final

from .database import Database, transaction
from .errors import ClinicError, CopyRefused
from .migrations import migrate, schema_version

logger = logging.getLogger(__name__)

#: Rows sent to the target per executemany().
BATCH: Final = 500


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _count(db: Database, table: str) -> int:
    return int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


def _columns(db: Database, table: str) -> Sequence[str]:
    row = db.execute(f"SELECT * FROM {table} LIMIT 1").fetchone()
    return [] if row is None else list(row.keys())


def _renumber(target: Database, table: str) -> None:
    """Start PostgreSQL's identity columns after the copied numbers (SQLite needs nothing)."""
    if target.dialect != "postgresql":
        return
    for row in target.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ? AND is_identity = 'YES'", (table,)
    ).fetchall():
        column = str(row[0])
        target.execute(
            f"SELECT setval(pg_get_serial_sequence(?, ?), COALESCE(MAX({column}), 0) + 1, false)"
            f" FROM {table}",
            (table, column),
        )


def copy_database(source: Database, target: Database) -> dict[str, int]:
    """Copy every row of `source` into the empty `target`, in one transaction.

    Both are migrated to the current schema first.  Returns the rows copied per table;
    CopyRefused if the target holds any row; on any failure the target is left empty.
    """
    migrate(source)
    migrate(target)
    if schema_version(source) != schema_version(target):
        raise CopyRefused("source and target schema versions differ")
    tables = source.tables()
    if sorted(tables) != sorted(target.tables()):
        raise CopyRefused("source and target do not have the same tables")
    copied: dict[str, int] = {}
    with transaction(target):
        # checked under the write lock: no node can start writing meanwhile
        busy = [table for table in tables if _count(target, table)]
        if busy:
            raise CopyRefused(f"the target database already holds data (table {busy[0]}); "
                              "copy into a new, empty database")
        # creation order: a table comes after the tables it refers to
        for table in tables:
            columns = _columns(source, table)
            copied[table] = 0
            if not columns:
                continue
            names = ", ".join(columns)
            insert = f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})"
            rows = iter(source.execute(f"SELECT {names} FROM {table}"))
            for batch in _batches(rows, BATCH):
                target.executemany(insert, [tuple(row[c] for c in columns) for row in batch])
                copied[table] += len(batch)
            _renumber(target, table)
        for table in tables:
            if _count(target, table) != copied[table]:
                raise ClinicError(f"table {table}: {copied[table]} rows copied but "
                                  f"{_count(target, table)} found; nothing was kept")
    logger.info("Database copied: %d rows in %d tables", sum(copied.values()), len(copied))
    return copied
