"""The consent ledger: every decision a patient (or practitioner) takes about a consultation (sync, worker thread).

Append-only: a decision changed later (a withdrawal) is a new entry; the
latest entry of a subject is what counts.  Each entry is audited too.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Final

from . import audit, timestamps
from .database import Database, Row, transaction
from .errors import NotFound
from .notices import NOTICES

SUBJECTS: Final = ("teleconsultation", "recording")
DECISIONS: Final = ("given", "refused", "withdrawn")
ACTORS: Final = ("patient", "practitioner")


@dataclasses.dataclass(frozen=True, slots=True)
class ConsentEntry:
    """One decision: who, about what, under which notice version, when."""

    id: str
    consultation_id: str
    patient_id: str
    actor: str
    subject: str
    notice_version: str
    decision: str
    recording_id: str | None
    at: str

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _entry(row: Row) -> ConsentEntry:
    return ConsentEntry(**{f.name: row[f.name] for f in dataclasses.fields(ConsentEntry)})


class ConsentLedger:
    """Rows of `consent_entry`; blocking, call from the clinic's worker thread."""

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def record(self, consultation_id: str, actor: str, subject: str, decision: str, notice_version: str,
               recording_id: str | None = None) -> ConsentEntry:
        """Append a decision (and its audit entry); ValueError on an unknown value, NotFound for the consultation."""
        if actor not in ACTORS or subject not in SUBJECTS or decision not in DECISIONS:
            raise ValueError(f"consent entry: bad actor/subject/decision {actor!r}/{subject!r}/{decision!r}")
        if notice_version != NOTICES[subject].version:
            raise ValueError(f"notice version {notice_version!r} is not the current one ({NOTICES[subject].version})")
        with transaction(self._conn) as conn:
            row = conn.execute("SELECT patient_id, practitioner_id FROM consultation WHERE id = ?",
                               (consultation_id,)).fetchone()
            if row is None:
                raise NotFound(f"no consultation {consultation_id!r}")
            entry = ConsentEntry(
                id=uuid.uuid4().hex, consultation_id=consultation_id, patient_id=row["patient_id"], actor=actor,
                subject=subject, notice_version=notice_version, decision=decision, recording_id=recording_id,
                at=timestamps.to_text(timestamps.utc_now()),
            )
            names = [f.name for f in dataclasses.fields(ConsentEntry)]
            # the ledger's own order (decisions within one second too), taken under the write lock
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM consent_entry").fetchone()[0]
            conn.execute(f"INSERT INTO consent_entry (seq, {', '.join(names)})"
                         f" VALUES (?, {', '.join('?' * len(names))})",
                         (seq, *(getattr(entry, n) for n in names)))
            actor_id = row["patient_id"] if actor == "patient" else row["practitioner_id"]
            audit.append(conn, actor, actor_id, "consent.record", patient_id=row["patient_id"],
                         consultation_id=consultation_id, object_id=entry.id)
        return entry

    def latest(self, consultation_id: str, subject: str = "teleconsultation") -> ConsentEntry | None:
        """The decision that counts now for a subject of a consultation, or None (not asked yet)."""
        row = self._conn.execute(
            "SELECT * FROM consent_entry WHERE consultation_id = ? AND subject = ? ORDER BY seq DESC"
            " LIMIT 1", (consultation_id, subject)).fetchone()
        return None if row is None else _entry(row)

    def of_consultation(self, consultation_id: str) -> list[ConsentEntry]:
        rows = self._conn.execute("SELECT * FROM consent_entry WHERE consultation_id = ? ORDER BY seq",
                                  (consultation_id,)).fetchall()
        return [_entry(r) for r in rows]

    def of_patient(self, patient_id: str) -> list[ConsentEntry]:
        rows = self._conn.execute("SELECT * FROM consent_entry WHERE patient_id = ? ORDER BY seq",
                                  (patient_id,)).fetchall()
        return [_entry(r) for r in rows]
