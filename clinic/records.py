"""Patient records as practitioners see them: patients, care teams, consultations (sync, worker thread).

Every read and change here takes the acting practitioner and answers NotFound when
they have no access, so a record they may not see looks exactly like one that
does not exist.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid

from . import audit, timestamps
from .agenda import Agenda, _consultation
from .database import Database, transaction
from .errors import NotFound
from .models import Consultation, Patient, Practitioner, Role
from .registry import Registry, _patient, normalise_email

logger = logging.getLogger(__name__)

MAX_NAME = 200
#: the languages a patient's mails can be written in
LANGUAGES = ("fr", "en")


@dataclasses.dataclass(frozen=True, slots=True)
class TeamMember:
    """A practitioner with access to a record."""

    practitioner: Practitioner
    granted_at: datetime.datetime


def check_patient_fields(name: str, email: str, date_of_birth: datetime.date,
                         language: str = "fr") -> tuple[str, str]:
    """Return the cleaned name and email, or ValueError naming the bad field."""
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {LANGUAGES}")
    name = " ".join(name.split())
    if not name or len(name) > MAX_NAME:
        raise ValueError(f"name must have 1 to {MAX_NAME} characters")
    email = normalise_email(email)
    local, _, domain = email.rpartition("@")
    if not local or "." not in domain or len(email) > 254 or any(c.isspace() for c in email):
        raise ValueError("email is not a valid address")
    today = timestamps.utc_now().date()
    if not datetime.date(1900, 1, 1) <= date_of_birth <= today:
        raise ValueError("date of birth must be between 1900-01-01 and today")
    return name, email


class Records:
    """Patients, care teams and consultations, always on behalf of one practitioner.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(self, conn: Database, registry: Registry, agenda: Agenda) -> None:
        self._conn = conn
        self._registry = registry
        self._agenda = agenda

    def _check(self, practitioner_id: str, patient_id: str) -> Patient:
        if not self._registry.has_access(practitioner_id, patient_id):
            raise NotFound(f"no patient {patient_id!r} for practitioner {practitioner_id!r}")
        return self._registry.get_patient(patient_id)

    def create_patient(self, practitioner_id: str, name: str, email: str, date_of_birth: datetime.date,
                       language: str = "fr") -> Patient:
        """Create a record and give its creator access, in one transaction."""
        name, email = check_patient_fields(name, email, date_of_birth, language)
        patient = Patient(id=uuid.uuid4().hex, name=name, email=email, date_of_birth=date_of_birth,
                          language=language)
        now = timestamps.to_text(timestamps.utc_now())
        with transaction(self._conn) as conn:
            conn.execute(
                "INSERT INTO patient (id, name, email, date_of_birth, created_at, language) VALUES (?, ?, ?, ?, ?, ?)",
                (patient.id, name, email, timestamps.date_to_text(date_of_birth), now, language),
            )
            conn.execute("INSERT INTO access_grant (practitioner_id, patient_id, granted_at) VALUES (?, ?, ?)",
                         (practitioner_id, patient.id, now))
            audit.append(conn, "practitioner", practitioner_id, "patient.create", patient_id=patient.id)
        logger.info("Patient(%s) created by Practitioner(%s)", patient.id, practitioner_id)
        return patient

    def update_patient(self, practitioner_id: str, patient_id: str, name: str, email: str,
                       date_of_birth: datetime.date, language: str | None = None) -> Patient:
        """Change a record's identity fields (and mail language; None keeps it)."""
        old = self._check(practitioner_id, patient_id)
        language = old.language if language is None else language
        name, email = check_patient_fields(name, email, date_of_birth, language)
        with transaction(self._conn) as conn:
            conn.execute("UPDATE patient SET name = ?, email = ?, date_of_birth = ?, language = ? WHERE id = ?",
                         (name, email, timestamps.date_to_text(date_of_birth), language, patient_id))
            audit.append(conn, "practitioner", practitioner_id, "patient.update", patient_id=patient_id)
        return Patient(id=patient_id, name=name, email=email, date_of_birth=date_of_birth, language=language)

    def patient(self, practitioner_id: str, patient_id: str) -> Patient:
        """The record, or NotFound if the practitioner has no access."""
        return self._check(practitioner_id, patient_id)

    def patients(self, practitioner_id: str) -> list[Patient]:
        """The records the practitioner has access to, by name."""
        rows = self._conn.execute(
            "SELECT p.* FROM patient p JOIN access_grant g ON g.patient_id = p.id"
            " WHERE g.practitioner_id = ? ORDER BY p.name, p.id", (practitioner_id,)
        ).fetchall()
        return [_patient(row) for row in rows]

    def consultations(self, practitioner_id: str, patient_id: str) -> list[Consultation]:
        """The patient's consultations, latest first."""
        self._check(practitioner_id, patient_id)
        rows = self._conn.execute(
            "SELECT * FROM consultation WHERE patient_id = ? ORDER BY scheduled_at DESC, id", (patient_id,)
        ).fetchall()
        return [_consultation(row) for row in rows]

    def day(self, practitioner_id: str, start: datetime.datetime,
            end: datetime.datetime) -> list[tuple[Consultation, Patient]]:
        """The practitioner's own consultations scheduled in [start, end), in time order."""
        rows = self._conn.execute(
            "SELECT c.*, p.name AS p_name, p.email AS p_email, p.date_of_birth AS p_dob, p.language AS p_language"
            " FROM consultation c JOIN patient p ON p.id = c.patient_id"
            " WHERE c.practitioner_id = ? AND c.scheduled_at >= ? AND c.scheduled_at < ?"
            " ORDER BY c.scheduled_at, c.id",
            (practitioner_id, timestamps.to_text(start), timestamps.to_text(end)),
        ).fetchall()
        return [
            (_consultation(row), Patient(id=row["patient_id"], name=row["p_name"], email=row["p_email"],
                                         date_of_birth=timestamps.date_from_text(row["p_dob"]),
                                         language=row["p_language"]))
            for row in rows
        ]

    def team(self, practitioner_id: str, patient_id: str) -> list[TeamMember]:
        """Who has access to the record, earliest grant first."""
        self._check(practitioner_id, patient_id)
        rows = self._conn.execute(
            "SELECT p.id, p.email, p.display_name, g.granted_at FROM access_grant g"
            " JOIN practitioner p ON p.id = g.practitioner_id WHERE g.patient_id = ?"
            " ORDER BY g.granted_at, p.id", (patient_id,)
        ).fetchall()
        return [TeamMember(Practitioner(id=r["id"], email=r["email"], display_name=r["display_name"]),
                           timestamps.from_text(r["granted_at"])) for r in rows]

    def grant(self, practitioner_id: str, patient_id: str, colleague_email: str) -> Practitioner:
        """Give a colleague (by email) access; NotFound if no such colleague."""
        self._check(practitioner_id, patient_id)
        colleague = self._registry.find_practitioner(colleague_email)
        if colleague is None:
            raise NotFound("no practitioner with this email")
        with transaction(self._conn) as conn:
            cursor = conn.execute(
                "INSERT INTO access_grant (practitioner_id, patient_id, granted_at) VALUES (?, ?, ?)"
                " ON CONFLICT (practitioner_id, patient_id) DO NOTHING",
                (colleague.id, patient_id, timestamps.to_text(timestamps.utc_now())),
            )
            if cursor.rowcount:
                audit.append(conn, "practitioner", practitioner_id, "access.grant", patient_id=patient_id,
                             object_id=colleague.id)
        logger.info("Practitioner(%s) granted Practitioner(%s) access to Patient(%s)",
                    practitioner_id, colleague.id, patient_id)
        return colleague

    def revoke(self, practitioner_id: str, patient_id: str, colleague_id: str) -> None:
        """Withdraw a practitioner's access; ValueError if they are the last one with access."""
        self._check(practitioner_id, patient_id)
        with transaction(self._conn) as conn:
            count = conn.execute("SELECT COUNT(*) FROM access_grant WHERE patient_id = ?", (patient_id,)).fetchone()[0]
            exists = conn.execute("SELECT 1 FROM access_grant WHERE patient_id = ? AND practitioner_id = ?",
                                  (patient_id, colleague_id)).fetchone()
            if exists is None:
                raise NotFound("this practitioner has no access to the record")
            if count <= 1:
                raise ValueError("the last practitioner with access cannot be removed")
            conn.execute("DELETE FROM access_grant WHERE patient_id = ? AND practitioner_id = ?",
                         (patient_id, colleague_id))
            audit.append(conn, "practitioner", practitioner_id, "access.revoke", patient_id=patient_id,
                         object_id=colleague_id)
        logger.info("Practitioner(%s) revoked Practitioner(%s) from Patient(%s)",
                    practitioner_id, colleague_id, patient_id)

    def schedule(self, practitioner_id: str, patient_id: str,
                 scheduled_at: datetime.datetime) -> tuple[Consultation, dict[Role, str]]:
        """Schedule a consultation with the patient; returns the clear invitation tokens once."""
        consultation, clear = self._agenda.schedule_consultation(patient_id, practitioner_id, scheduled_at)
        with transaction(self._conn) as conn:
            audit.append(conn, "practitioner", practitioner_id, "consultation.schedule",
                         patient_id=patient_id, consultation_id=consultation.id)
        return consultation, clear
