"""The append-only audit log: who did what to which object, and when (sync, worker thread).

Entries carry ids and an action code only, never free text, so the log holds no
patient data; triggers (SQLite and PostgreSQL) refuse any UPDATE or DELETE of an entry.  Triggers
stop mistakes, not someone holding the file: each entry also carries the hash of
the previous entry and its own hash (over that and its content), so `verify()`
names the first entry changed, removed or reordered (docs/audit.md).  Entries
written before the chain existed are folded into the first chained entry's
previous hash, so they are covered too.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import pathlib
from collections.abc import Iterable, Iterator
from typing import Any, Final

from . import timestamps
from .database import Database, Row

#: Every action the log knows; anything else is a programming error.
ACTIONS: Final = frozenset({
    "login", "logout",
    "patient.create", "patient.update", "record.view",
    "access.grant", "access.revoke",
    "consultation.schedule", "consultation.join", "consultation.close",
    "consultation.cancel", "consultation.move",
    "document.import", "document.remove", "document.view", "document.download",
    "patient_link.create", "patient_link.revoke", "patient_link.open",
    "patient_link.birth_date_failed", "patient_link.locked",
    "mail.queue",
    "recording.start", "recording.stop", "recording.delete",
    "consent.record", "record.export", "patient.erase",
})
#: The previous hash of the very first entry of an empty log.
GENESIS: Final = "0" * 64
ACTOR_KINDS: Final = ("practitioner", "patient", "system", "operator")


@dataclasses.dataclass(frozen=True, slots=True)
class AuditEvent:
    """One entry of the audit log."""

    seq: int
    at: datetime.datetime
    actor_kind: str
    actor_id: str | None
    action: str
    patient_id: str | None = None
    consultation_id: str | None = None
    document_id: str | None = None
    object_id: str | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object (the export format)."""
        data = dataclasses.asdict(self)
        data["at"] = timestamps.to_text(self.at)
        return data


FIELDS: Final = tuple(f.name for f in dataclasses.fields(AuditEvent))
#: What an entry's hash covers (besides the previous hash), in this order.
CONTENT: Final = ("seq", "at", "actor_kind", "actor_id", "action", "patient_id", "consultation_id",
                  "document_id", "object_id")


def entry_hash(prev_hash: str, content: dict[str, Any] | Row) -> str:
    """SHA-256 (hex) of the previous hash and the entry's content, in a fixed encoding."""
    body = json.dumps([prev_hash, *(content[name] for name in CONTENT)], separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _legacy_hash(conn: Database, up_to_seq: int) -> str:
    """Fold the entries written before the chain existed into one hash (the chain's start)."""
    digest = GENESIS
    for row in conn.execute("SELECT * FROM audit_event WHERE seq <= ? ORDER BY seq", (up_to_seq,)):
        digest = entry_hash(digest, row)
    return digest


def append(
    conn: Database,
    actor_kind: str,
    actor_id: str | None,
    action: str,
    *,
    patient_id: str | None = None,
    consultation_id: str | None = None,
    document_id: str | None = None,
    object_id: str | None = None,
) -> None:
    """Add an entry; call inside the caller's transaction so it commits with the change."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if actor_kind not in ACTOR_KINDS:
        raise ValueError(f"unknown audit actor kind {actor_kind!r}")
    if not conn.in_transaction:
        # the previous hash must be read under the same write lock as the insert
        raise ValueError("audit.append() needs the caller's write transaction")
    last = conn.execute("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
    if last is None:
        seq, prev = 1, GENESIS
    else:
        seq = last["seq"] + 1
        prev = last["hash"] if last["hash"] is not None else _legacy_hash(conn, last["seq"])
    content = {
        "seq": seq, "at": timestamps.to_text(timestamps.utc_now()), "actor_kind": actor_kind,
        "actor_id": actor_id, "action": action, "patient_id": patient_id,
        "consultation_id": consultation_id, "document_id": document_id, "object_id": object_id,
    }
    conn.execute(
        "INSERT INTO audit_event (seq, at, actor_kind, actor_id, action, patient_id, consultation_id,"
        " document_id, object_id, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*(content[name] for name in CONTENT), prev, entry_hash(prev, content)),
    )


def _event(row: Row) -> AuditEvent:
    return AuditEvent(
        seq=row["seq"], at=timestamps.from_text(row["at"]), actor_kind=row["actor_kind"],
        actor_id=row["actor_id"], action=row["action"], patient_id=row["patient_id"],
        consultation_id=row["consultation_id"], document_id=row["document_id"],
        object_id=row["object_id"], prev_hash=row["prev_hash"], hash=row["hash"],
    )


def for_patient(conn: Database, patient_id: str, limit: int = 500) -> list[AuditEvent]:
    """The latest entries about one patient's record, newest first."""
    rows = conn.execute(
        "SELECT * FROM audit_event WHERE patient_id = ? ORDER BY seq DESC LIMIT ?", (patient_id, limit)
    ).fetchall()
    return [_event(row) for row in rows]


def export(conn: Database, after_seq: int = 0, batch: int = 1000) -> Iterator[AuditEvent]:
    """Every entry after `after_seq`, oldest first, read in batches."""
    while True:
        rows = conn.execute(
            "SELECT * FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, batch)
        ).fetchall()
        if not rows:
            return
        for row in rows:
            yield _event(row)
        after_seq = rows[-1]["seq"]


@dataclasses.dataclass(frozen=True, slots=True)
class Checkpoint:
    """The head of the chain at one moment, kept outside the database (catches a cut tail)."""

    seq: int
    hash: str
    at: str

    def as_line(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "at": self.at}, sort_keys=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """What verify() found: `problem` is None when the log is intact."""

    checked: int
    head_seq: int
    problem: str | None = None
    seq: int | None = None  # the first entry found wrong (or where entries are missing)

    @property
    def ok(self) -> bool:
        return self.problem is None


def head(conn: Database) -> Checkpoint | None:
    """The last chained entry as a checkpoint, or None while nothing is chained."""
    row = conn.execute(
        "SELECT seq, hash FROM audit_event WHERE hash IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return Checkpoint(row["seq"], row["hash"], timestamps.to_text(timestamps.utc_now()))


def verify(conn: Database, checkpoints: Iterable[Checkpoint] = (), batch: int = 1000) -> Verdict:
    """Walk the whole chain, oldest first, then compare it with the checkpoints kept outside."""
    expected, prev_seq, checked, chained = GENESIS, 0, 0, False
    hashes: dict[int, str] = {}
    wanted = {cp.seq for cp in checkpoints}
    while True:
        rows = conn.execute(
            "SELECT * FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?", (prev_seq, batch)
        ).fetchall()
        if not rows:
            break
        for row in rows:
            seq = row["seq"]
            if seq != prev_seq + 1:
                return Verdict(checked, prev_seq, f"entries {prev_seq + 1} to {seq - 1} were removed", prev_seq + 1)
            if row["hash"] is None:
                if chained:
                    return Verdict(checked, prev_seq, f"entry {seq} was changed (its hash is gone)", seq)
                expected = entry_hash(expected, row)  # written before the chain: folded in
            else:
                chained = True
                if row["prev_hash"] != expected:
                    return Verdict(checked, prev_seq, f"entry {seq} does not follow entry {prev_seq}: "
                                   "an entry was removed or entries were reordered", seq)
                if entry_hash(row["prev_hash"], row) != row["hash"]:
                    return Verdict(checked, prev_seq, f"entry {seq} was changed", seq)
                expected = row["hash"]
                if seq in wanted:
                    hashes[seq] = row["hash"]
            prev_seq = seq
            checked += 1
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.seq > prev_seq:
            return Verdict(checked, prev_seq, f"the log ends at entry {prev_seq} but the checkpoint of {cp.at} "
                           f"saw entry {cp.seq}: entries {prev_seq + 1} to {cp.seq} were removed", prev_seq + 1)
        if hashes.get(cp.seq) != cp.hash:
            return Verdict(checked, prev_seq, f"entry {cp.seq} differs from the checkpoint of {cp.at}: "
                           "the log was rewritten up to there", cp.seq)
    return Verdict(checked, prev_seq)


def write_checkpoint(path: pathlib.Path, checkpoint: Checkpoint) -> bool:
    """Append the checkpoint to `path` (one JSON line) unless the head has not moved; True if written."""
    last = read_checkpoints(path)
    if last and last[-1].seq == checkpoint.seq and last[-1].hash == checkpoint.hash:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, (checkpoint.as_line() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    return True


def read_checkpoints(path: pathlib.Path) -> list[Checkpoint]:
    """The checkpoints written so far (none if the file is missing); ValueError on a damaged line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            found.append(Checkpoint(int(data["seq"]), str(data["hash"]), str(data["at"])))
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path.name} line {number} is not a checkpoint") from None
    return found
