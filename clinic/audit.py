"""The append-only audit log: who did what to which object, and when (sync, worker thread).

Entries carry ids and an action code only, never free text, so the log holds no
patient data; SQLite triggers refuse any UPDATE or DELETE of an entry.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterator
from typing import Any, Final

from . import timestamps
from .database import Database, Row

#: Every action the log knows; anything else is a programming error.
ACTIONS: Final = frozenset({
    "login", "logout",
    "patient.create", "patient.update", "record.view",
    "access.grant", "access.revoke",
    "consultation.schedule", "consultation.join", "consultation.close",
    "document.import", "document.remove", "document.view", "document.download",
    "patient_link.create", "patient_link.revoke", "patient_link.open",
    "patient_link.birth_date_failed", "patient_link.locked",
    "mail.queue",
    "recording.start", "recording.stop", "recording.delete",
})
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

    def as_json(self) -> dict[str, Any]:
        """The entry as a JSON object (the export format)."""
        data = dataclasses.asdict(self)
        data["at"] = timestamps.to_text(self.at)
        return data


FIELDS: Final = tuple(f.name for f in dataclasses.fields(AuditEvent))


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
    conn.execute(
        "INSERT INTO audit_event (at, actor_kind, actor_id, action, patient_id, consultation_id,"
        " document_id, object_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (timestamps.to_text(timestamps.utc_now()), actor_kind, actor_id, action, patient_id,
         consultation_id, document_id, object_id),
    )


def _event(row: Row) -> AuditEvent:
    return AuditEvent(
        seq=row["seq"], at=timestamps.from_text(row["at"]), actor_kind=row["actor_kind"],
        actor_id=row["actor_id"], action=row["action"], patient_id=row["patient_id"],
        consultation_id=row["consultation_id"], document_id=row["document_id"],
        object_id=row["object_id"],
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
