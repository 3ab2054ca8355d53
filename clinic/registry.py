"""People and who may see whom: practitioners, patients, access grants (sync, worker thread)."""

from __future__ import annotations

import datetime
import logging
import uuid

from . import timestamps
from .database import Database, Row, transaction
from .errors import AlreadyExists, ConstraintViolated, NotFound
from .models import Patient, Practitioner
from .passwords import Passwords

logger = logging.getLogger(__name__)


def normalise_email(email: str) -> str:
    """Return the canonical form of an email address (stripped, lower-case)."""
    canonical = email.strip().lower()
    if not canonical:
        raise ValueError("email must not be empty")
    return canonical


def _practitioner(row: Row) -> Practitioner:
    return Practitioner(id=row["id"], email=row["email"], display_name=row["display_name"])


def _patient(row: Row) -> Patient:
    return Patient(
        id=row["id"],
        name=row["name"],
        email=row["email"],
        date_of_birth=timestamps.date_from_text(row["date_of_birth"]),
        language=row["language"],
    )


class Registry:
    """Practitioner accounts, patient records and access grants.

    Blocking: every method runs SQL (and maybe argon2), so call it from the worker thread.
    """

    def __init__(self, conn: Database, passwords: Passwords) -> None:
        """Work on `conn`, hashing passwords with `passwords`."""
        self._conn = conn
        self._passwords = passwords

    # practitioners

    def add_practitioner(self, email: str, password: str, display_name: str) -> Practitioner:
        """Create a practitioner account; AlreadyExists if the email is taken."""
        email = normalise_email(email)
        # hash before the transaction: it is slow and needs no lock
        password_hash = self._passwords.hash(password)
        practitioner = Practitioner(id=uuid.uuid4().hex, email=email, display_name=display_name)
        try:
            with transaction(self._conn) as conn:
                conn.execute(
                    "INSERT INTO practitioner (id, email, password_hash, display_name, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (
                        practitioner.id,
                        email,
                        password_hash,
                        display_name,
                        timestamps.to_text(timestamps.utc_now()),
                    ),
                )
        except ConstraintViolated as exc:
            if self._practitioner_row(email) is not None:
                raise AlreadyExists("a practitioner with this email already exists") from exc
            raise
        logger.info("Practitioner(%s) added", practitioner.id)
        return practitioner

    def verify_practitioner(self, email: str, password: str) -> Practitioner | None:
        """Return the practitioner if `password` is theirs, else None."""
        row = self._practitioner_row(normalise_email(email))
        if row is None:
            self._passwords.waste_time(password)
            return None
        if not self._passwords.verify(row["password_hash"], password):
            logger.info("Practitioner(%s) failed password check", row["id"])
            return None
        if self._passwords.needs_rehash(row["password_hash"]):
            self.set_practitioner_password(row["id"], password)
        return _practitioner(row)

    def set_practitioner_password(self, practitioner_id: str, password: str) -> None:
        """Replace a practitioner's password; NotFound if the id is unknown."""
        password_hash = self._passwords.hash(password)
        with transaction(self._conn) as conn:
            cursor = conn.execute(
                "UPDATE practitioner SET password_hash = ? WHERE id = ?",
                (password_hash, practitioner_id),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no practitioner {practitioner_id!r}")
        logger.info("Practitioner(%s) password changed", practitioner_id)

    def find_practitioner(self, email: str) -> Practitioner | None:
        """Return the practitioner with this email, or None."""
        row = self._practitioner_row(normalise_email(email))
        return None if row is None else _practitioner(row)

    def get_practitioner(self, practitioner_id: str) -> Practitioner:
        """Return the practitioner with this id; NotFound otherwise."""
        row = self._conn.execute(
            "SELECT * FROM practitioner WHERE id = ?", (practitioner_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no practitioner {practitioner_id!r}")
        return _practitioner(row)

    def _practitioner_row(self, email: str) -> Row | None:
        row: Row | None = self._conn.execute(
            "SELECT * FROM practitioner WHERE email = ?", (email,)
        ).fetchone()
        return row

    # patients

    def add_patient(self, name: str, email: str, date_of_birth: datetime.date) -> Patient:
        """Create a patient record."""
        patient = Patient(
            id=uuid.uuid4().hex,
            name=name,
            email=normalise_email(email),
            date_of_birth=date_of_birth,
        )
        with transaction(self._conn) as conn:
            conn.execute(
                "INSERT INTO patient (id, name, email, date_of_birth, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    patient.id,
                    patient.name,
                    patient.email,
                    timestamps.date_to_text(date_of_birth),
                    timestamps.to_text(timestamps.utc_now()),
                ),
            )
        logger.info("Patient(%s) added", patient.id)
        return patient

    def get_patient(self, patient_id: str) -> Patient:
        """Return the patient with this id; NotFound otherwise."""
        row = self._conn.execute("SELECT * FROM patient WHERE id = ?", (patient_id,)).fetchone()
        if row is None:
            raise NotFound(f"no patient {patient_id!r}")
        return _patient(row)

    def find_patient(self, name: str, email: str) -> Patient | None:
        """Return the oldest patient with exactly this name and email, or None."""
        row = self._conn.execute(
            "SELECT * FROM patient WHERE email = ? AND name = ? ORDER BY created_at, id LIMIT 1",
            (normalise_email(email), name),
        ).fetchone()
        return None if row is None else _patient(row)

    # access

    def grant_access(self, practitioner_id: str, patient_id: str) -> None:
        """Let a practitioner see a patient (idempotent); NotFound if either is unknown."""
        self.get_practitioner(practitioner_id)
        self.get_patient(patient_id)
        with transaction(self._conn) as conn:
            cursor = conn.execute(
                "INSERT INTO access_grant (practitioner_id, patient_id, granted_at)"
                " VALUES (?, ?, ?) ON CONFLICT (practitioner_id, patient_id) DO NOTHING",
                (practitioner_id, patient_id, timestamps.to_text(timestamps.utc_now())),
            )
        if cursor.rowcount:
            logger.info(
                "Practitioner(%s) granted access to Patient(%s)", practitioner_id, patient_id
            )

    def has_access(self, practitioner_id: str, patient_id: str) -> bool:
        """Tell whether a practitioner may see a patient."""
        row = self._conn.execute(
            "SELECT 1 FROM access_grant WHERE practitioner_id = ? AND patient_id = ?",
            (practitioner_id, patient_id),
        ).fetchone()
        return row is not None
