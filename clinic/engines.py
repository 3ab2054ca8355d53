"""Open the clinic database a target names: a SQLite file, or a PostgreSQL URL."""

from __future__ import annotations

import pathlib

from .database import Database, connect, is_url


def open_database(target: str | pathlib.Path) -> Database:
    """A PostgreSQL URL ("postgresql://…") or the path of a SQLite file."""
    if is_url(target):
        # imported here: a SQLite-only site never loads the PostgreSQL driver
        from .postgres import PostgresDatabase

        return PostgresDatabase(str(target))
    return connect(pathlib.Path(target))
