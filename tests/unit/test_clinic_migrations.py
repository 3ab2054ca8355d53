"""Schema migrations and connection setup, on real SQLite files."""

from __future__ import annotations

import contextlib
import datetime
import pathlib
import sqlite3

import pytest

from clinic import Clinic, ClinicError
from clinic.database import connect
from clinic.migrations import MIGRATIONS, migrate, schema_version, statements

LIFETIME = datetime.timedelta(hours=1)
TABLES = {"practitioner", "patient", "access_grant", "consultation", "invitation"}


def raw(path: pathlib.Path) -> contextlib.closing[sqlite3.Connection]:
    """A plain autocommit connection, independent of clinic/, to inspect the file."""
    return contextlib.closing(sqlite3.connect(path, isolation_level=None))


def tables(path: pathlib.Path) -> set[str]:
    with raw(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


async def test_open_creates_parent_dirs_and_applies_every_migration(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "deep" / "er" / "clinic.sqlite"
    clinic = await Clinic.open(path, invitation_lifetime=LIFETIME)
    await clinic.close()
    assert tables(path) >= TABLES
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_reopen_applies_nothing_and_keeps_data(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "clinic.sqlite"
    clinic = await Clinic.open(path, invitation_lifetime=LIFETIME)
    patient = await clinic.add_patient("Jeanne", "j@example.org", datetime.date(1970, 1, 1))
    await clinic.close()

    clinic = await Clinic.open(path, invitation_lifetime=LIFETIME)
    assert await clinic.get_patient(patient.id) == patient
    await clinic.close()

    conn = connect(path)
    try:
        assert schema_version(conn) == len(MIGRATIONS)
        assert migrate(conn) == 0
        assert schema_version(conn) == len(MIGRATIONS)
    finally:
        conn.close()


async def test_newer_schema_is_refused_and_left_alone(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "clinic.sqlite"
    future = len(MIGRATIONS) + 1
    with raw(path) as conn:
        conn.execute(f"PRAGMA user_version = {future}")
    with pytest.raises(ClinicError, match=rf"version {future} is newer.*\({len(MIGRATIONS)}\)"):
        await Clinic.open(path, invitation_lifetime=LIFETIME)
    with raw(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == future
    assert not TABLES & tables(path)


def test_failed_migration_rolls_back_entirely(tmp_path: pathlib.Path) -> None:
    broken = "CREATE TABLE half_done (a TEXT);\nCREATE TABLE practitioner (a TEXT);\n"
    conn = connect(tmp_path / "clinic.sqlite")
    try:
        with pytest.raises(sqlite3.OperationalError, match="already exists"):
            migrate(conn, (*MIGRATIONS, broken))
        assert schema_version(conn) == len(MIGRATIONS)
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        assert "half_done" not in names
        assert not conn.in_transaction
    finally:
        conn.close()


def test_migrations_apply_one_by_one(tmp_path: pathlib.Path) -> None:
    conn = connect(tmp_path / "clinic.sqlite")
    try:
        extra = "CREATE TABLE later (\n    id TEXT NOT NULL PRIMARY KEY\n);\n"
        assert migrate(conn, MIGRATIONS) == len(MIGRATIONS)
        assert migrate(conn, (*MIGRATIONS, extra)) == 1
        assert schema_version(conn) == len(MIGRATIONS) + 1
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("CREATE TABLE a (x TEXT);\n", ["CREATE TABLE a (x TEXT);"]),
        (
            "CREATE TABLE a (\n  x TEXT\n);\n\nCREATE INDEX a_x ON a (x);",
            ["CREATE TABLE a (\n  x TEXT\n);", "CREATE INDEX a_x ON a (x);"],
        ),
        ("", []),
    ],
)
def test_statements_split(script: str, expected: list[str]) -> None:
    assert list(statements(script)) == expected


def test_statements_refuse_unterminated_script() -> None:
    with pytest.raises(ValueError, match="incomplete"):
        list(statements("CREATE TABLE a (x TEXT)"))


def test_every_shipped_migration_splits_cleanly() -> None:
    for script in MIGRATIONS:
        assert list(statements(script))


@pytest.mark.parametrize(
    ("statement", "failure"),
    [
        ("INSERT INTO access_grant VALUES ('nobody', 'nobody', 't')", "FOREIGN KEY"),
        (
            "INSERT INTO consultation"
            " VALUES ('c', 'p', 'd', 't', 'lost', 'joined', 'joined', 't', 't')",
            "CHECK",
        ),
        (
            "INSERT INTO consultation"
            " VALUES ('c', 'p', 'd', 't', 'waiting', 'gone', 'joined', 't', 't')",
            "CHECK",
        ),
        ("INSERT INTO invitation VALUES ('i', 'c', 'nurse', 'h', 't', NULL, 't')", "CHECK"),
        ("INSERT INTO invitation VALUES ('i', 'c', 'patient', 'h', 't', NULL, 't')", "FOREIGN KEY"),
        ("INSERT INTO practitioner VALUES (NULL, 'e', 'h', 'n', 't', 0)", "NOT NULL"),
    ],
)
def test_schema_constraints(tmp_path: pathlib.Path, statement: str, failure: str) -> None:
    conn = connect(tmp_path / "clinic.sqlite")
    try:
        migrate(conn)
        with pytest.raises(sqlite3.IntegrityError, match=failure):
            conn.execute(statement)
    finally:
        conn.close()
