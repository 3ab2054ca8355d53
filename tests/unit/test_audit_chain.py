"""The audit log's hash chain: tampering behind the application's back is caught (issue 19 item 2).

Each test writes a few entries through the application, then edits the SQLite
file directly as an attacker would (dropping the append-only triggers first).
"""

from __future__ import annotations

import contextlib
import datetime
import pathlib
import sqlite3
import subprocess
import sys
from collections.abc import Iterator

import pytest

from clinic import audit
from clinic.database import Database, connect, transaction
from clinic.errors import ConstraintViolated
from clinic.migrations import MIGRATIONS, migrate
from helpers.databases import TestDatabase

ENTRIES = 6


@pytest.fixture
def db(tmp_path: pathlib.Path) -> Iterator[Database]:
    conn = connect(tmp_path / "teleconsult.sqlite3")
    migrate(conn)
    for i in range(ENTRIES):
        with transaction(conn):
            audit.append(conn, "practitioner", f"pr{i}", "record.view", patient_id=f"pa{i % 2}")
    yield conn
    conn.close()


def attack(conn: Database, *sql: str) -> None:
    conn.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
    conn.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    for statement in sql:
        conn.execute(statement)


def test_an_untouched_log_verifies_and_every_entry_links_to_the_one_before(db: Database) -> None:
    verdict = audit.verify(db)
    assert verdict.ok and verdict.checked == ENTRIES and verdict.head_seq == ENTRIES
    rows = db.execute("SELECT prev_hash, hash FROM audit_event ORDER BY seq").fetchall()
    assert rows[0]["prev_hash"] == audit.GENESIS
    assert all(rows[i]["prev_hash"] == rows[i - 1]["hash"] for i in range(1, ENTRIES))


def test_the_triggers_still_refuse_an_ordinary_update(db: Database) -> None:
    with pytest.raises(ConstraintViolated, match="append-only"):
        db.execute("UPDATE audit_event SET actor_id = 'x' WHERE seq = 2")


def test_an_edited_entry_is_named(db: Database) -> None:
    attack(db, "UPDATE audit_event SET actor_id = 'someone-else' WHERE seq = 3")
    verdict = audit.verify(db)
    assert not verdict.ok and verdict.seq == 3 and "entry 3 was changed" in str(verdict.problem)


def test_an_edit_with_the_hash_recomputed_breaks_the_next_link(db: Database) -> None:
    attack(db, "UPDATE audit_event SET action = 'login' WHERE seq = 3")
    row = db.execute("SELECT * FROM audit_event WHERE seq = 3").fetchone()
    db.execute("UPDATE audit_event SET hash = ? WHERE seq = 3", (audit.entry_hash(row["prev_hash"], row),))
    verdict = audit.verify(db)
    assert not verdict.ok and verdict.seq == 4 and "does not follow entry 3" in str(verdict.problem)


def test_a_deleted_entry_is_named(db: Database) -> None:
    attack(db, "DELETE FROM audit_event WHERE seq = 4")
    verdict = audit.verify(db)
    assert not verdict.ok and verdict.seq == 4 and "entries 4 to 4 were removed" in str(verdict.problem)


def test_a_deleted_entry_with_the_following_ones_renumbered_is_caught(db: Database) -> None:
    attack(db, "DELETE FROM audit_event WHERE seq = 4", "UPDATE audit_event SET seq = seq - 1 WHERE seq > 4")
    verdict = audit.verify(db)
    assert not verdict.ok and verdict.seq == 4


def test_reordered_entries_are_caught(db: Database) -> None:
    # swap entries 2 and 5 wholesale (content and hashes move together)
    attack(db, "UPDATE audit_event SET seq = -2 WHERE seq = 2", "UPDATE audit_event SET seq = 2 WHERE seq = 5",
           "UPDATE audit_event SET seq = 5 WHERE seq = -2")
    verdict = audit.verify(db)
    assert not verdict.ok and verdict.seq == 2 and "reordered" in str(verdict.problem)


def test_a_cut_tail_is_caught_by_the_checkpoint_kept_outside(db: Database, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit-checkpoints.jsonl"
    head = audit.head(db)
    assert head is not None and audit.write_checkpoint(path, head)
    assert not audit.write_checkpoint(path, head)  # the head did not move: no new line
    assert audit.verify(db, audit.read_checkpoints(path)).ok
    attack(db, f"DELETE FROM audit_event WHERE seq > {ENTRIES - 2}")
    assert audit.verify(db).ok  # the chain alone cannot see a cut tail ...
    verdict = audit.verify(db, audit.read_checkpoints(path))  # ... the checkpoint does
    assert not verdict.ok and verdict.seq == ENTRIES - 1
    assert f"entries {ENTRIES - 1} to {ENTRIES} were removed" in str(verdict.problem)


def test_a_rewritten_chain_disagrees_with_the_checkpoint(db: Database, tmp_path: pathlib.Path) -> None:
    path = tmp_path / "audit-checkpoints.jsonl"
    head = audit.head(db)
    assert head is not None
    audit.write_checkpoint(path, head)
    # the attacker edits entry 2 and recomputes every hash after it
    attack(db, "UPDATE audit_event SET actor_id = 'forged' WHERE seq = 2")
    prev = db.execute("SELECT hash FROM audit_event WHERE seq = 1").fetchone()[0]
    for seq in range(2, ENTRIES + 1):
        row = db.execute("SELECT * FROM audit_event WHERE seq = ?", (seq,)).fetchone()
        digest = audit.entry_hash(prev, row)
        db.execute("UPDATE audit_event SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, seq))
        prev = digest
    assert audit.verify(db).ok
    verdict = audit.verify(db, audit.read_checkpoints(path))
    assert not verdict.ok and verdict.seq == ENTRIES and "rewritten" in str(verdict.problem)


def test_entries_written_before_the_chain_are_folded_into_it(tmp_path: pathlib.Path) -> None:
    conn = connect(tmp_path / "old.sqlite3")
    try:
        migrate(conn, MIGRATIONS[:-1])  # a database from before the chain
        for i in range(3):
            conn.execute("INSERT INTO audit_event (at, actor_kind, actor_id, action) VALUES (?, 'system', NULL, ?)",
                         (f"2026-01-0{i + 1}T00:00:00.000000Z", "mail.queue"))
        migrate(conn)
        with transaction(conn):
            audit.append(conn, "operator", None, "login")
        assert audit.verify(conn).ok
        attack(conn, "UPDATE audit_event SET action = 'logout' WHERE seq = 2")
        verdict = audit.verify(conn)
        assert not verdict.ok and verdict.seq == 4  # the legacy edit changes what entry 4 chains to
    finally:
        conn.close()


def test_append_outside_a_transaction_is_refused(db: Database) -> None:
    with pytest.raises(ValueError, match="transaction"):
        audit.append(db, "system", None, "login")


def test_the_cli_reports_tampering_with_exit_status_1(db: Database, tmp_path: pathlib.Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndata_dir = "{tmp_path}"\n')
    command = [sys.executable, "-m", "signaling.cli", "--log-level", "WARNING", "audit", "verify", "--config", str(config)]
    intact = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert intact.returncode == 0 and f"{ENTRIES} entries" in intact.stdout, intact.stderr
    attack(db, "DELETE FROM audit_event WHERE seq = 2")
    broken = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert broken.returncode == 1 and "entries 2 to 2 were removed" in broken.stdout
    assert "Traceback" not in broken.stderr
    (tmp_path / "audit-checkpoints.jsonl").write_text("not json\n")
    damaged = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert damaged.returncode == 2 and "line 1" in damaged.stderr and "Traceback" not in damaged.stderr


async def test_the_chain_is_kept_and_checked_on_both_engines(database: TestDatabase, tmp_path: pathlib.Path) -> None:
    clinic = await database.open(datetime.timedelta(hours=1))
    try:
        for i in range(3):
            await clinic.practice.audit("system", None, "mail.queue", object_id=f"m{i}")
        verdict = await clinic.practice.audit_verify(tmp_path / "checkpoints.jsonl")
        assert verdict.ok and verdict.checked >= 3
        # someone holding the database drops the trigger and edits an entry
        on = "" if database.kind == "sqlite" else " ON audit_event"
        tamper(database, f"DROP TRIGGER audit_event_no_update{on}",
               "UPDATE audit_event SET object_id = 'forged' WHERE object_id = 'm1'")
        (seq,) = database.rows("SELECT seq FROM audit_event WHERE object_id = 'forged'")[0]
        verdict = await clinic.practice.audit_verify(tmp_path / "checkpoints.jsonl")
        assert not verdict.ok and verdict.seq == seq and f"entry {seq} was changed" in str(verdict.problem)
    finally:
        await clinic.close()


def tamper(database: TestDatabase, *sql: str) -> None:
    """Run statements with the engine's own driver, committed at once, as an attacker with the database would."""
    if database.kind != "sqlite":
        for statement in sql:
            database.rows(statement)
        return
    with contextlib.closing(sqlite3.connect(database.target, isolation_level=None)) as conn:
        for statement in sql:
            conn.execute(statement)
