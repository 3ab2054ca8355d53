"""Appointment mails, cancels and moves (sync, worker thread).

Scheduling queues the invitation (text, HTML and a calendar entry) and, when
`Letterhead.reminder_before` allows, a reminder due that long before the
appointment.  A cancel revokes both sides' links; a move replaces them; either
withdraws the queued mails whose link died, mails the patient (with the
calendar update or cancellation) and writes an audit entry, in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import logging

from . import audit, ics, mail_templates, timestamps
from .agenda import Agenda
from .database import Database, transaction
from .errors import AppointmentUnchangeable, NotFound
from .mail import MailQueue
from .models import Consultation, ConsultationState, Patient, Role
from .registry import Registry

logger = logging.getLogger(__name__)

#: states in which an appointment can still be cancelled or moved (nobody is in the call yet)
CHANGEABLE = (ConsultationState.SCHEDULED, ConsultationState.WAITING)
#: how far ahead an appointment may be moved (and the link's expiry still computed)
MAX_AHEAD = datetime.timedelta(days=3660)


@dataclasses.dataclass(frozen=True, slots=True)
class Letterhead:
    """What the practice's mails need from the configuration."""

    practice_name: str
    sender: str  # the From header: its address is the calendar entry's organizer
    base_url: str
    tz: datetime.tzinfo
    reminder_before: datetime.timedelta  # 0: no reminder
    contact: str = ""

    @property
    def sender_address(self) -> str:
        return email.utils.parseaddr(self.sender)[1] or "no-reply@teleconsult.invalid"

    def link(self, token: str) -> str:
        return f"{self.base_url.rstrip('/')}/c/{token}"


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """The outcome of a cancel or a move."""

    consultation: Consultation
    mail_id: str
    tokens: dict[Role, str] = dataclasses.field(default_factory=dict, repr=False)  # a move's new links


class Appointments:
    """Mails around an appointment, and its cancel and move.  Blocking: call from the worker thread."""

    def __init__(self, conn: Database, agenda: Agenda, registry: Registry, mail: MailQueue) -> None:
        self._conn = conn
        self._agenda = agenda
        self._registry = registry
        self._mail = mail

    def _queue(self, conn: Database, kind: str, letter: Letterhead, consultation: Consultation, patient: Patient,
               *, link: str | None, old_when: datetime.datetime | None = None,
               send_at: datetime.datetime | None = None) -> str:
        practitioner = self._registry.get_practitioner(consultation.practitioner_id)
        language = patient.language
        values = {
            "practice": letter.practice_name, "practitioner": practitioner.display_name,
            "when": mail_templates.when_text(consultation.scheduled_at, letter.tz, language),
            "old_when": "" if old_when is None else mail_templates.when_text(old_when, letter.tz, language),
            "contact": letter.contact,
        }
        rendered = mail_templates.render(kind, language, values, link)
        event = ics.CalendarEvent(
            consultation_id=consultation.id, domain=letter.sender_address.rpartition("@")[2] or "teleconsult.invalid",
            start=consultation.scheduled_at, sequence=consultation.sequence,
            summary=mail_templates.calendar_summary(language, practitioner.display_name, letter.practice_name),
            organizer_name=letter.practice_name, organizer_address=letter.sender_address,
            attendee_address=patient.email, link=link)
        calendar = ics.calendar(event, cancel=kind == "cancelled", now=timestamps.utc_now())
        return self._mail.enqueue(conn, kind, patient.email, rendered.subject, rendered.text,
                                  patient_id=patient.id, consultation_id=consultation.id, html=rendered.html,
                                  calendar=calendar, send_at=send_at)

    def invite(self, conn: Database, consultation: Consultation, patient_token: str, letter: Letterhead) -> str:
        """Queue the invitation and its reminder (inside the caller's transaction); returns the invitation's id."""
        patient = self._registry.get_patient(consultation.patient_id)
        link = letter.link(patient_token)
        mail_id = self._queue(conn, "invitation", letter, consultation, patient, link=link)
        self._remind(conn, consultation, patient, link, letter)
        return mail_id

    def _remind(self, conn: Database, consultation: Consultation, patient: Patient, link: str,
                letter: Letterhead) -> None:
        if letter.reminder_before <= datetime.timedelta(0):
            return
        send_at = consultation.scheduled_at - letter.reminder_before
        if send_at <= timestamps.utc_now():  # too close: the invitation itself reminds
            return
        self._queue(conn, "reminder", letter, consultation, patient, link=link, send_at=send_at)

    def _changeable(self, practitioner_id: str, consultation_id: str) -> Consultation:
        consultation = self._agenda.get_consultation(consultation_id)
        if consultation.practitioner_id != practitioner_id:
            # another practitioner's consultation looks like one that does not exist
            raise NotFound(f"no consultation {consultation_id!r} for practitioner {practitioner_id!r}")
        if consultation.cancelled_at is not None:
            raise AppointmentUnchangeable("cancelled")
        if consultation.state not in CHANGEABLE:
            raise AppointmentUnchangeable("closed" if consultation.state is ConsultationState.CLOSED else "started")
        return consultation

    def cancel(self, practitioner_id: str, consultation_id: str, letter: Letterhead) -> Change:
        """Cancel: every link revoked, queued link mails withdrawn, the patient told; audit entry."""
        now = timestamps.utc_now()
        with transaction(self._conn) as conn:
            old = self._changeable(practitioner_id, consultation_id)
            conn.execute("UPDATE consultation SET cancelled_at = ?, sequence = sequence + 1, updated_at = ?"
                         " WHERE id = ?", (timestamps.to_text(now), timestamps.to_text(now), consultation_id))
            consultation = dataclasses.replace(old, cancelled_at=now, sequence=old.sequence + 1)
            self._agenda.revoke_all(conn, consultation_id)
            self._mail.withdraw(conn, consultation_id)
            patient = self._registry.get_patient(consultation.patient_id)
            mail_id = self._queue(conn, "cancelled", letter, consultation, patient, link=None)
            audit.append(conn, "practitioner", practitioner_id, "consultation.cancel",
                         patient_id=consultation.patient_id, consultation_id=consultation_id)
        logger.info("Consultation(%s) cancelled by Practitioner(%s)", consultation_id, practitioner_id)
        return Change(consultation, mail_id)

    def move(self, practitioner_id: str, consultation_id: str, scheduled_at: datetime.datetime,
             letter: Letterhead) -> Change:
        """Move to a future time: new links for both sides (the old ones say "moved"), the patient mailed."""
        scheduled_at = timestamps.as_utc(scheduled_at)
        now = timestamps.utc_now()
        if scheduled_at <= now:
            raise ValueError("the new time is in the past")
        if scheduled_at > now + MAX_AHEAD:
            raise ValueError("the new time is more than ten years ahead")
        with transaction(self._conn) as conn:
            old = self._changeable(practitioner_id, consultation_id)
            conn.execute("UPDATE consultation SET scheduled_at = ?, sequence = sequence + 1, updated_at = ?"
                         " WHERE id = ?", (timestamps.to_text(scheduled_at), timestamps.to_text(now), consultation_id))
            consultation = dataclasses.replace(old, scheduled_at=scheduled_at, sequence=old.sequence + 1)
            clear = self._agenda.renew_invitations(conn, consultation_id, scheduled_at)
            self._mail.withdraw(conn, consultation_id)
            patient = self._registry.get_patient(consultation.patient_id)
            link = letter.link(clear[Role.PATIENT])
            mail_id = self._queue(conn, "moved", letter, consultation, patient, link=link,
                                  old_when=old.scheduled_at)
            self._remind(conn, consultation, patient, link, letter)
            audit.append(conn, "practitioner", practitioner_id, "consultation.move",
                         patient_id=consultation.patient_id, consultation_id=consultation_id)
        logger.info("Consultation(%s) moved by Practitioner(%s)", consultation_id, practitioner_id)
        return Change(consultation, mail_id, clear)
