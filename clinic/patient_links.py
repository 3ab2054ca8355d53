"""The patient's personal document link: hashed token, expiry, revocation, date-of-birth check (sync).

Opening a link asks for the patient's date of birth; wrong answers are counted
and lock the link after `max_failures`; a right answer opens a short session
(its token in a cookie, stored hashed) that lists and serves the documents.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid

from . import audit, timestamps, tokens
from .accounts import Attempts, RateLimit
from .database import Database, Row, transaction
from .errors import LinkGone, NotFound, WrongBirthDate

logger = logging.getLogger(__name__)

#: How long the session opened by a right date of birth lasts.
SESSION_LIFETIME = datetime.timedelta(hours=1)


@dataclasses.dataclass(frozen=True, slots=True)
class PatientLink:
    """A personal link sent to a patient for the documents of one consultation."""

    id: str
    patient_id: str
    consultation_id: str
    expires_at: datetime.datetime
    revoked_at: datetime.datetime | None
    failures: int
    locked_at: datetime.datetime | None
    first_opened_at: datetime.datetime | None
    last_opened_at: datetime.datetime | None
    created_at: datetime.datetime

    def state(self, now: datetime.datetime) -> str:
        """active / revoked / locked / expired."""
        if self.revoked_at is not None:
            return "revoked"
        if self.locked_at is not None:
            return "locked"
        if now >= self.expires_at:
            return "expired"
        return "active"


def _time(text: str | None) -> datetime.datetime | None:
    return None if text is None else timestamps.from_text(text)


def _link(row: Row) -> PatientLink:
    return PatientLink(
        id=row["id"], patient_id=row["patient_id"], consultation_id=row["consultation_id"],
        expires_at=timestamps.from_text(row["expires_at"]), revoked_at=_time(row["revoked_at"]),
        failures=row["failures"], locked_at=_time(row["locked_at"]),
        first_opened_at=_time(row["first_opened_at"]), last_opened_at=_time(row["last_opened_at"]),
        created_at=timestamps.from_text(row["created_at"]),
    )


class PatientLinks:
    """Creation, checks and revocation of patient links.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(self, conn: Database, attempts: Attempts) -> None:
        self._conn = conn
        self._attempts = attempts

    def create(self, conn: Database, patient_id: str, consultation_id: str,
               lifetime: datetime.timedelta) -> tuple[PatientLink, str]:
        """A new link (inside the caller's transaction); returns the clear token once."""
        token = tokens.new_token()
        now = timestamps.utc_now()
        link = PatientLink(uuid.uuid4().hex, patient_id, consultation_id, now + lifetime, None, 0, None,
                           None, None, now)
        conn.execute(
            "INSERT INTO patient_link (id, patient_id, consultation_id, token_hash, expires_at, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (link.id, patient_id, consultation_id, tokens.token_hash(token),
             timestamps.to_text(link.expires_at), timestamps.to_text(now)),
        )
        return link, token

    def find(self, token: str) -> PatientLink:
        """The link behind a token, whatever its state; NotFound if none."""
        if not tokens.is_well_formed(token):
            raise NotFound("no patient link for this token")
        row = self._conn.execute("SELECT * FROM patient_link WHERE token_hash = ?",
                                 (tokens.token_hash(token),)).fetchone()
        if row is None:
            raise NotFound("no patient link for this token")
        return _link(row)

    def usable(self, token: str) -> PatientLink:
        """The link behind a token if it can still be used; NotFound or LinkGone(reason)."""
        link = self.find(token)
        state = link.state(timestamps.utc_now())
        if state != "active":
            raise LinkGone(state)
        return link

    def check_birth_date(self, token: str, date_of_birth: datetime.date, *, address: str,
                         per_minute: int, max_failures: int) -> tuple[PatientLink, str]:
        """Open a session if the date of birth matches; returns (link, clear session token).

        TooManyAttempts when this link or address tried too often in the last minute,
        WrongBirthDate(remaining) on a mismatch, LinkGone("locked") once too many failed.
        """
        link = self.usable(token)
        minute = RateLimit(per_minute, datetime.timedelta(minutes=1))
        self._attempts.check({("birth-date-link", link.id): minute, ("birth-date-address", address): minute})
        row = self._conn.execute("SELECT date_of_birth FROM patient WHERE id = ?", (link.patient_id,)).fetchone()
        now = timestamps.utc_now()
        if row is None or timestamps.date_from_text(row["date_of_birth"]) != date_of_birth:
            failures = link.failures + 1
            with transaction(self._conn) as conn:
                self._attempts.add(conn, "birth-date-link", link.id)
                self._attempts.add(conn, "birth-date-address", address)
                locked = failures >= max_failures
                conn.execute("UPDATE patient_link SET failures = ?, locked_at = ? WHERE id = ?",
                             (failures, timestamps.to_text(now) if locked else None, link.id))
                audit.append(conn, "patient", link.patient_id, "patient_link.birth_date_failed",
                             patient_id=link.patient_id, consultation_id=link.consultation_id, object_id=link.id)
                if locked:
                    audit.append(conn, "system", None, "patient_link.locked", patient_id=link.patient_id,
                                 consultation_id=link.consultation_id, object_id=link.id)
            logger.info("PatientLink(%s) wrong date of birth (%d/%d)", link.id, failures, max_failures)
            if locked:
                raise LinkGone("locked")
            raise WrongBirthDate(max_failures - failures)
        session = tokens.new_token()
        with transaction(self._conn) as conn:
            conn.execute(
                "INSERT INTO patient_link_session (token_hash, link_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (tokens.token_hash(session), link.id, timestamps.to_text(now),
                 timestamps.to_text(now + SESSION_LIFETIME)),
            )
            conn.execute("UPDATE patient_link SET failures = 0 WHERE id = ?", (link.id,))
            self._opened(conn, link.id, now)
            audit.append(conn, "patient", link.patient_id, "patient_link.open", patient_id=link.patient_id,
                         consultation_id=link.consultation_id, object_id=link.id)
        logger.info("PatientLink(%s) opened", link.id)
        return link, session

    def _opened(self, conn: Database, link_id: str, now: datetime.datetime) -> None:
        text = timestamps.to_text(now)
        conn.execute("UPDATE patient_link SET first_opened_at = COALESCE(first_opened_at, ?), last_opened_at = ?"
                     " WHERE id = ?", (text, text, link_id))

    def session(self, token: str, session_token: str) -> PatientLink:
        """The link if `session_token` is a live session of it; NotFound or LinkGone otherwise."""
        link = self.usable(token)
        if not tokens.is_well_formed(session_token):
            raise NotFound("no session")
        row = self._conn.execute(
            "SELECT expires_at FROM patient_link_session WHERE token_hash = ? AND link_id = ?",
            (tokens.token_hash(session_token), link.id),
        ).fetchone()
        if row is None or timestamps.from_text(row["expires_at"]) <= timestamps.utc_now():
            raise NotFound("no session")
        return link

    def document_opened(self, link: PatientLink, document_id: str, action: str) -> None:
        """Note that the patient viewed or downloaded a document (first/last opened, audit)."""
        with transaction(self._conn) as conn:
            self._opened(conn, link.id, timestamps.utc_now())
            audit.append(conn, "patient", link.patient_id, action, patient_id=link.patient_id,
                         consultation_id=link.consultation_id, document_id=document_id, object_id=link.id)

    def of_patient(self, patient_id: str) -> list[PatientLink]:
        """Every link of a patient, latest first."""
        rows = self._conn.execute("SELECT * FROM patient_link WHERE patient_id = ? ORDER BY created_at DESC",
                                  (patient_id,)).fetchall()
        return [_link(row) for row in rows]

    def revoke(self, practitioner_id: str, patient_id: str, link_id: str) -> None:
        """Revoke a link of this patient (idempotent); NotFound if it is not theirs."""
        with transaction(self._conn) as conn:
            cursor = conn.execute(
                "UPDATE patient_link SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ? AND patient_id = ?",
                (timestamps.to_text(timestamps.utc_now()), link_id, patient_id),
            )
            if cursor.rowcount == 0:
                raise NotFound(f"no patient link {link_id!r}")
            conn.execute("DELETE FROM patient_link_session WHERE link_id = ?", (link_id,))
            audit.append(conn, "practitioner", practitioner_id, "patient_link.revoke", patient_id=patient_id,
                         object_id=link_id)
        logger.info("PatientLink(%s) revoked by Practitioner(%s)", link_id, practitioner_id)
