"""The mail queue: messages wait in SQLite until the sender delivers them (sync, worker thread).

The texts carry no health data: no document name, no reason for the visit, no
note; appointment mails (clinic/appointments.py) name the practice and the
practitioner, the time and a personal link.  A reminder waits here too, queued
with its due time: it survives a restart and is claimed once, like any mail.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid
from typing import Final

from . import audit, timestamps
from .database import Database, Row, transaction
from .errors import NotFound

logger = logging.getLogger(__name__)

#: How long a node that claimed a message for sending has it to itself.
SEND_LEASE: Final = datetime.timedelta(minutes=5)

KINDS: Final = ("invitation", "documents", "reminder", "moved", "cancelled")
#: the states of a message (the operator's counts)
STATES: Final = ("queued", "sent", "failed", "withdrawn")
#: the mails whose link a move or a cancel kills: withdrawn when still queued
LINK_KINDS: Final = ("invitation", "reminder", "moved")
MAX_ERROR = 200


@dataclasses.dataclass(frozen=True, slots=True)
class MailMessage:
    """One queued message and its delivery state."""

    id: str
    kind: str
    recipient: str = dataclasses.field(repr=False)
    subject: str = dataclasses.field(repr=False)
    body: str = dataclasses.field(repr=False)
    patient_id: str | None
    consultation_id: str | None
    state: str  # queued / sent / failed / withdrawn
    attempts: int
    last_error: str | None
    next_attempt_at: datetime.datetime
    created_at: datetime.datetime
    sent_at: datetime.datetime | None
    html: str = dataclasses.field(default="", repr=False)
    calendar: str | None = dataclasses.field(default=None, repr=False)  # the .ics, CRLF line ends
    send_after: datetime.datetime | None = None  # a reminder's time: not sent before

    @property
    def waiting_since(self) -> datetime.datetime:
        """Since when the mail should have gone out (a reminder is not late before its time)."""
        return max(self.created_at, self.send_after or self.created_at)

    def status_json(self) -> dict[str, object]:
        """The operator's view: ids and delivery state, no address and no text."""
        return {
            "id": self.id, "kind": self.kind, "patient_id": self.patient_id,
            "consultation_id": self.consultation_id, "state": self.state, "attempts": self.attempts,
            "last_error": self.last_error, "next_attempt_at": timestamps.to_text(self.next_attempt_at),
            "created_at": timestamps.to_text(self.created_at),
            "sent_at": None if self.sent_at is None else timestamps.to_text(self.sent_at),
        }


def _time(text: str | None) -> datetime.datetime | None:
    return None if text is None else timestamps.from_text(text)


def _message(row: Row) -> MailMessage:
    return MailMessage(
        id=row["id"], kind=row["kind"], recipient=row["recipient"], subject=row["subject"], body=row["body"],
        patient_id=row["patient_id"], consultation_id=row["consultation_id"], state=row["state"],
        attempts=row["attempts"], last_error=row["last_error"],
        next_attempt_at=timestamps.from_text(row["next_attempt_at"]),
        created_at=timestamps.from_text(row["created_at"]), sent_at=_time(row["sent_at"]),
        html=row["html"], calendar=row["calendar"], send_after=_time(row["send_after"]),
    )


class MailQueue:
    """Queued, sent and failed messages.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def enqueue(self, conn: Database, kind: str, recipient: str, subject: str, body: str, *,
                patient_id: str | None, consultation_id: str | None, html: str = "",
                calendar: str | None = None, send_at: datetime.datetime | None = None) -> str:
        """Queue a message (inside the caller's transaction); returns its id.

        `send_at`: not before then (a reminder); now when None.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown mail kind {kind!r}")
        message_id = uuid.uuid4().hex
        now = timestamps.to_text(timestamps.utc_now())
        after = None if send_at is None else timestamps.to_text(timestamps.as_utc(send_at))
        conn.execute(
            "INSERT INTO mail_message (id, kind, recipient, subject, body, patient_id, consultation_id, state,"
            " attempts, next_attempt_at, created_at, html, calendar, send_after)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?, ?, ?)",
            (message_id, kind, recipient, subject, body, patient_id, consultation_id, after or now, now, html,
             calendar, after),
        )
        audit.append(conn, "system", None, "mail.queue", patient_id=patient_id, consultation_id=consultation_id,
                     object_id=message_id)
        logger.info("Mail(%s) %s queued", message_id, kind)
        return message_id

    def withdraw(self, conn: Database, consultation_id: str) -> int:
        """Withdraw a consultation's queued mails that carry its link (inside the caller's transaction).

        After a move or a cancel their link is dead: a reminder or an unsent
        invitation must not go out.  Their texts are dropped; returns how many.
        """
        marks = ", ".join("?" * len(LINK_KINDS))
        cursor = conn.execute(
            "UPDATE mail_message SET state = 'withdrawn', body = '', html = '', calendar = NULL"
            f" WHERE consultation_id = ? AND state = 'queued' AND kind IN ({marks})",
            (consultation_id, *LINK_KINDS))
        return cursor.rowcount

    def due(self, limit: int = 20, lease: datetime.timedelta = SEND_LEASE) -> list[MailMessage]:
        """Claim the queued messages whose next attempt is due, oldest first.

        Claimed messages are not due again before `lease` is over, so with several
        nodes sending from one database each message is tried by one node; one that
        died mid-send leaves its messages to the others after the lease.
        """
        now = timestamps.utc_now()
        with transaction(self._conn) as conn:
            rows = conn.execute(
                "SELECT * FROM mail_message WHERE state = 'queued' AND next_attempt_at <= ?"
                " ORDER BY next_attempt_at, created_at LIMIT ?",
                (timestamps.to_text(now), limit),
            ).fetchall()
            conn.executemany("UPDATE mail_message SET next_attempt_at = ? WHERE id = ?",
                             [(timestamps.to_text(now + lease), row["id"]) for row in rows])
        return [_message(row) for row in rows]

    def next_due_at(self) -> datetime.datetime | None:
        """When the next queued message is due, or None if none is queued."""
        row = self._conn.execute("SELECT MIN(next_attempt_at) FROM mail_message WHERE state = 'queued'").fetchone()
        return _time(row[0])

    def mark_sent(self, message_id: str) -> None:
        """Record a delivery; the texts (they hold a link) are dropped once sent."""
        with transaction(self._conn) as conn:
            conn.execute("UPDATE mail_message SET state = 'sent', attempts = attempts + 1, body = '', html = '', calendar = NULL,"
                         " last_error = NULL, sent_at = ? WHERE id = ?",
                         (timestamps.to_text(timestamps.utc_now()), message_id))
        logger.info("Mail(%s) sent", message_id)

    def mark_failed(self, message_id: str, error: str, *, retry_in: datetime.timedelta | None) -> None:
        """Record a failed attempt; retry after `retry_in`, or give up when it is None."""
        now = timestamps.utc_now()
        with transaction(self._conn) as conn:
            conn.execute(
                "UPDATE mail_message SET attempts = attempts + 1, last_error = ?, state = ?,"
                " next_attempt_at = ? WHERE id = ?",
                (error[:MAX_ERROR], "queued" if retry_in is not None else "failed",
                 timestamps.to_text(now + (retry_in or datetime.timedelta(0))), message_id),
            )
        logger.info("Mail(%s) attempt failed (%s)%s", message_id, error[:MAX_ERROR],
                    "" if retry_in is not None else ", giving up")

    def get(self, message_id: str) -> MailMessage:
        """One message; NotFound otherwise."""
        row = self._conn.execute("SELECT * FROM mail_message WHERE id = ?", (message_id,)).fetchone()
        if row is None:
            raise NotFound(f"no mail {message_id!r}")
        return _message(row)

    def of_patient(self, patient_id: str) -> list[MailMessage]:
        """A patient's messages, latest first."""
        rows = self._conn.execute("SELECT * FROM mail_message WHERE patient_id = ? ORDER BY created_at DESC",
                                  (patient_id,)).fetchall()
        return [_message(row) for row in rows]

    def recent(self, limit: int = 200) -> list[MailMessage]:
        """The latest messages of all patients (the operator's view)."""
        rows = self._conn.execute("SELECT * FROM mail_message ORDER BY created_at DESC LIMIT ?", (limit,)).fetchall()
        return [_message(row) for row in rows]
