"""Schema migrations and connection setup, on real SQLite files and a real PostgreSQL."""

from __future__ import annotations

import contextlib
import datetime
import pathlib
import sqlite3

import threading

import psycopg
import pytest
from helpers.databases import PostgresServer, TestDatabase, make

from clinic import Clinic, ClinicError, audit
from clinic.database import transaction
from clinic.engines import open_database
from clinic.errors import ConstraintViolated
from clinic.migrations import MIGRATIONS, Dialects, migrate, postgresql, schema_version, statements

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


async def test_reopen_applies_nothing_and_keeps_data(database: TestDatabase) -> None:
    clinic = await database.open(LIFETIME)
    patient = await clinic.add_patient("Jeanne", "j@example.org", datetime.date(1970, 1, 1))
    await clinic.close()

    clinic = await database.open(LIFETIME)
    assert await clinic.get_patient(patient.id) == patient
    await clinic.close()

    with contextlib.closing(open_database(database.target)) as conn:
        assert schema_version(conn) == len(MIGRATIONS)
        assert migrate(conn) == 0
        assert schema_version(conn) == len(MIGRATIONS)


def set_version(database: TestDatabase, version: int) -> None:
    if database.kind == "sqlite":
        database.rows(f"PRAGMA user_version = {version:d}")
    else:
        database.rows("CREATE TABLE teleconsult_schema (version INTEGER NOT NULL)")
        database.rows("INSERT INTO teleconsult_schema VALUES (?)", (version,))


async def test_newer_schema_is_refused_and_left_alone(database: TestDatabase) -> None:
    future = len(MIGRATIONS) + 1
    set_version(database, future)
    with pytest.raises(ClinicError, match=rf"version {future} is newer.*\({len(MIGRATIONS)}\)"):
        await database.open(LIFETIME)
    with contextlib.closing(open_database(database.target)) as conn:
        assert schema_version(conn) == future
    assert not TABLES & set(database.tables())


def test_failed_migration_rolls_back_entirely(database: TestDatabase) -> None:
    broken = "CREATE TABLE half_done (a TEXT);\nCREATE TABLE practitioner (a TEXT);\n"
    with contextlib.closing(open_database(database.target)) as conn:
        with pytest.raises((sqlite3.OperationalError, psycopg.errors.DuplicateTable), match="already exists"):
            migrate(conn, (*MIGRATIONS, broken))
        assert schema_version(conn) == len(MIGRATIONS)
        assert "half_done" not in database.tables()
        # the connection is usable again: no transaction was left open
        with transaction(conn):
            conn.execute("INSERT INTO patient (id, name, email, date_of_birth, created_at) VALUES ('p', 'n', 'e', 'd', 't')")
        assert database.rows("SELECT id FROM patient") == [("p",)]


def test_migrations_apply_one_by_one(database: TestDatabase) -> None:
    with contextlib.closing(open_database(database.target)) as conn:
        extra = "CREATE TABLE later (\n    id TEXT NOT NULL PRIMARY KEY\n);\n"
        assert migrate(conn, MIGRATIONS) == len(MIGRATIONS)
        assert migrate(conn, (*MIGRATIONS, extra)) == 1
        assert schema_version(conn) == len(MIGRATIONS) + 1
        assert "later" in database.tables()


def test_two_processes_starting_together_migrate_once(database: TestDatabase) -> None:
    """Two nodes (here: two connections in two threads) opening an empty database at once."""
    applied: list[int] = []
    failures: list[BaseException] = []
    gate = threading.Barrier(2, timeout=10)

    def node() -> None:
        try:
            with contextlib.closing(open_database(database.target)) as conn:
                gate.wait()
                applied.append(migrate(conn))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=node) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not failures
    assert sum(applied) == len(MIGRATIONS)  # each migration ran once, on one of them
    with contextlib.closing(open_database(database.target)) as conn:
        assert schema_version(conn) == len(MIGRATIONS)


def test_the_same_tables_and_columns_on_both_engines(postgres_server: PostgresServer,
                                                      tmp_path: pathlib.Path) -> None:
    found = []
    for kind in ("sqlite", "postgresql"):
        each = make(kind, tmp_path / kind, postgres_server)
        with contextlib.closing(open_database(each.target)) as conn:
            migrate(conn)
        found.append({table: columns(each, table) for table in each.tables()})
    assert found[0] == found[1]
    assert TABLES <= set(found[0])


def columns(database: TestDatabase, table: str) -> list[str]:
    if database.kind == "sqlite":
        return [str(row[1]) for row in database.rows(f"PRAGMA table_info({table})")]
    return [str(name) for (name,) in database.rows(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = ? ORDER BY ordinal_position", (table,))]


def test_audit_log_is_append_only(database: TestDatabase) -> None:
    with contextlib.closing(open_database(database.target)) as conn:
        migrate(conn)
        with transaction(conn):
            audit.append(conn, "system", None, "mail.queue")
            audit.append(conn, "system", None, "mail.queue")
        seqs = [e.seq for e in audit.export(conn)]
        assert seqs == [seqs[0], seqs[0] + 1]  # numbered by the database, in order
        for statement in ["UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"]:
            with pytest.raises(ConstraintViolated, match="append-only"), transaction(conn):
                conn.execute(statement)
        assert len(list(audit.export(conn))) == 2


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
    for migration in MIGRATIONS:
        assert list(statements(migration.sqlite if isinstance(migration, Dialects) else migration))


def test_portable_types_become_postgresql_types() -> None:
    script = "CREATE TABLE t (\n    seq INTEGER NOT NULL PRIMARY KEY,\n    n INTEGER,\n    r REAL\n);"
    assert postgresql(script) == (
        "CREATE TABLE t (\n    seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n"
        "    n BIGINT,\n    r DOUBLE PRECISION\n);"
    )


@pytest.mark.parametrize(
    ("statement", "failure"),
    [
        ("INSERT INTO access_grant VALUES ('nobody', 'nobody', 't')", "FOREIGN KEY"),
        (
            "INSERT INTO consultation"
            " VALUES ('c', 'p', 'd', 't', 'lost', 'joined', 'joined', 't', 't', NULL, 0)",
            "CHECK",
        ),
        (
            "INSERT INTO consultation"
            " VALUES ('c', 'p', 'd', 't', 'waiting', 'gone', 'joined', 't', 't', NULL, 0)",
            "CHECK",
        ),
        ("INSERT INTO invitation VALUES ('i', 'c', 'nurse', 'h', 't', NULL, 't')", "CHECK"),
        ("INSERT INTO invitation VALUES ('i', 'c', 'patient', 'h', 't', NULL, 't')", "FOREIGN KEY"),
        ("INSERT INTO practitioner VALUES (NULL, 'e', 'h', 'n', 't', 0)", "NOT NULL"),
        ("INSERT INTO patient (id, name, email, date_of_birth, created_at, language)"
         " VALUES ('p', 'n', 'e', 'd', 't', 'de')", "CHECK"),
        ("INSERT INTO mail_message (id, kind, recipient, subject, body, state, next_attempt_at, created_at)"
         " VALUES ('m', 'spam', 'r', 's', 'b', 'queued', 't', 't')", "CHECK"),
    ],
)
def test_schema_constraints(database: TestDatabase, statement: str, failure: str) -> None:
    with contextlib.closing(open_database(database.target)) as conn:
        migrate(conn)
        if database.kind == "postgresql":
            failure = {"FOREIGN KEY": "foreign key", "CHECK": "check constraint", "NOT NULL": "null value"}[failure]
        with pytest.raises(ConstraintViolated, match=failure):
            conn.execute(statement)


def test_the_appointments_migration_keeps_mails_and_records(database: TestDatabase) -> None:
    from clinic.migrations import _APPOINTMENTS

    before = MIGRATIONS.index(_APPOINTMENTS)  # wherever a merge puts it
    with contextlib.closing(open_database(database.target)) as conn:
        migrate(conn, MIGRATIONS[:before])
        with transaction(conn):
            conn.execute("INSERT INTO practitioner (id, email, password_hash, display_name, created_at)"
                         " VALUES ('d', 'd@x.org', 'h', 'Dr D', 't')")
            conn.execute("INSERT INTO patient (id, name, email, date_of_birth, created_at)"
                         " VALUES ('p', 'n', 'e', '1970-01-01', 't')")
            conn.execute("INSERT INTO consultation (id, patient_id, practitioner_id, scheduled_at, state,"
                         " practitioner_stage, patient_stage, created_at, updated_at)"
                         " VALUES ('c', 'p', 'd', 't', 'scheduled', 'waiting_room', 'waiting_room', 't', 't')")
            conn.execute("INSERT INTO mail_message (id, kind, recipient, subject, body, patient_id, consultation_id,"
                         " state, attempts, next_attempt_at, created_at)"
                         " VALUES ('m', 'invitation', 'e', 's', 'b', 'p', 'c', 'queued', 2, 'n', 't')")
        assert migrate(conn, MIGRATIONS[:before + 1]) == 1
        with transaction(conn):  # the new kinds and states are accepted
            conn.execute("INSERT INTO mail_message (id, kind, recipient, subject, body, state, next_attempt_at,"
                         " created_at, send_after) VALUES ('r', 'reminder', 'e', 's', 'b', 'withdrawn', 'n', 't', 'n')")
    assert database.rows("SELECT id, kind, body, state, attempts, html, calendar FROM mail_message WHERE id = 'm'") \
        == [("m", "invitation", "b", "queued", 2, "", None)]
    assert database.rows("SELECT language FROM patient") == [("fr",)]
    assert database.rows("SELECT cancelled_at, sequence FROM consultation") == [(None, 0)]
