"""The practice behind an async API: accounts, records, patient links, mail queue, audit.

Reached as `clinic.practice`; every call runs in the clinic's single database thread.
"""

from __future__ import annotations

import asyncio
import datetime
import pathlib
from collections.abc import Awaitable, Callable, Collection, Iterator
from typing import ParamSpec, Protocol, TypeVar

from . import audit, timestamps
from .account_admin import AccountAdmin
from .accounts import Accounts, Login, LoginPolicy, WebSession
from .agenda import Agenda
from .appointments import MAX_AHEAD, Appointments, Change, Letterhead
from .audit import AuditEvent, Checkpoint, Verdict
from .closing import Closer, Closing, live_document_ids
from .database import Database, transaction
from .join_passes import JoinPasses
from .mail import MailMessage, MailQueue
from .models import Consultation, Patient, Practitioner, Role
from .patient_links import PatientLink, PatientLinks
from .records import Records, TeamMember
from .registry import Registry

_P = ParamSpec("_P")
_T = TypeVar("_T")


#: Password checks running at once (each holds argon2's 64 MiB and a core).
MAX_PASSWORD_CHECKS = 2


class Runner(Protocol):
    """Runs a blocking call in the clinic's database thread."""

    def __call__(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> Awaitable[_T]: ...


class Practice:
    """Async facade; the sync parts are only ever used from the database thread."""

    def __init__(self, run: Runner, conn: Database, registry: Registry, agenda: Agenda) -> None:
        self._run = run
        self._conn = conn
        self._accounts = Accounts(conn, registry)
        self._admin = AccountAdmin(conn)
        self._records = Records(conn, registry, agenda)
        self._passes = JoinPasses(conn)
        self._links = PatientLinks(conn, self._accounts.attempts)
        self._mail = MailQueue(conn)
        self._closer = Closer(conn, agenda, self._links, self._mail)
        self._appointments = Appointments(conn, agenda, registry, self._mail)
        # argon2 takes 64 MiB and a core per check: a burst of logins queues here
        self._hashing = asyncio.Semaphore(MAX_PASSWORD_CHECKS)

    # accounts

    async def set_practitioner_disabled(self, email: str, disabled: bool) -> tuple[str, int]:
        """The operator disables (every session ends) or enables an account: (id, sessions ended)."""
        return await self._run(self._admin.set_disabled, email, disabled)

    async def reset_practitioner_password(self, email: str, password: str) -> tuple[str, int]:
        """The operator sets a new password; every session of the account ends: (id, sessions ended)."""
        return await self._run(self._admin.reset_password, email, password)

    async def change_password(self, practitioner_id: str, old: str, new: str, keep_token: str) -> int | None:
        """A practitioner's own change (old password required); None when it is wrong, else other sessions ended."""
        async with self._hashing:  # two argon2 runs: bounded like logins
            return await self._run(self._admin.change_password, practitioner_id, old, new, keep_token)

    async def practitioner_count(self) -> int:
        return await self._run(self._admin.count)

    async def login(self, email: str, password: str, *, address: str, policy: LoginPolicy,
                    lifetime: datetime.timedelta, previous_token: str | None) -> Login | None:
        """Check a login (rate-limited) and open a new session; None if refused.

        The attempt is counted before the password is checked (see Accounts.begin_login).
        The argon2 check runs in a thread of its own, not the database's: a burst of
        logins never stalls the waiting rooms' database calls.
        """
        check = await self._run(self._accounts.begin_login, email, address=address, policy=policy)
        if check is None:
            return None
        async with self._hashing:
            ok = await asyncio.to_thread(self._accounts.check_password, check, password)
        return await self._run(self._accounts.finish_login, check, ok, lifetime=lifetime,
                               previous_token=previous_token)

    async def session(self, token: str) -> WebSession | None:
        """The live session of a cookie token, or None."""
        return await self._run(self._accounts.session, token)

    async def logout(self, token: str) -> None:
        """Close a session."""
        await self._run(self._accounts.logout, token)

    # records

    async def create_patient(self, practitioner_id: str, name: str, email: str,
                             date_of_birth: datetime.date, language: str = "fr") -> Patient:
        """Create a record the practitioner has access to; ValueError on a bad field."""
        return await self._run(self._records.create_patient, practitioner_id, name, email, date_of_birth, language)

    async def update_patient(self, practitioner_id: str, patient_id: str, name: str, email: str,
                             date_of_birth: datetime.date, language: str | None = None) -> Patient:
        """Change a record's identity (and mail language); NotFound without access, ValueError on a bad field."""
        return await self._run(self._records.update_patient, practitioner_id, patient_id, name, email,
                               date_of_birth, language)

    async def patient(self, practitioner_id: str, patient_id: str) -> Patient:
        """A record the practitioner may see; NotFound otherwise."""
        return await self._run(self._records.patient, practitioner_id, patient_id)

    async def patients(self, practitioner_id: str) -> list[Patient]:
        """The records the practitioner may see."""
        return await self._run(self._records.patients, practitioner_id)

    async def consultations(self, practitioner_id: str, patient_id: str) -> list[Consultation]:
        """A record's consultations, latest first."""
        return await self._run(self._records.consultations, practitioner_id, patient_id)

    async def day(self, practitioner_id: str, start: datetime.datetime,
                  end: datetime.datetime) -> list[tuple[Consultation, Patient]]:
        """The practitioner's consultations in [start, end)."""
        return await self._run(self._records.day, practitioner_id, start, end)

    async def team(self, practitioner_id: str, patient_id: str) -> list[TeamMember]:
        """Who has access to a record."""
        return await self._run(self._records.team, practitioner_id, patient_id)

    async def grant(self, practitioner_id: str, patient_id: str, colleague_email: str) -> Practitioner:
        """Give a colleague access to a record."""
        return await self._run(self._records.grant, practitioner_id, patient_id, colleague_email)

    async def revoke(self, practitioner_id: str, patient_id: str, colleague_id: str) -> None:
        """Withdraw a colleague's access."""
        await self._run(self._records.revoke, practitioner_id, patient_id, colleague_id)

    async def schedule(self, practitioner_id: str, patient_id: str, scheduled_at: datetime.datetime, *,
                       base_url: str, tz: datetime.tzinfo,
                       letter: Letterhead | None = None) -> tuple[Consultation, dict[Role, str], str]:
        """Schedule a consultation and queue the patient's invitation (and reminder); returns its id last.

        `letter`: the practice's name, sender and reminder delay (without it: base_url and tz, no reminder).
        ValueError for a time more than ten years ahead.
        """
        letter = letter or Letterhead(practice_name="Teleconsult", sender="", base_url=base_url, tz=tz,
                                      reminder_before=datetime.timedelta(0))
        return await self._run(self._schedule, practitioner_id, patient_id, scheduled_at, letter)

    def _schedule(self, practitioner_id: str, patient_id: str, scheduled_at: datetime.datetime,
                  letter: Letterhead) -> tuple[Consultation, dict[Role, str], str]:
        if scheduled_at > timestamps.utc_now() + MAX_AHEAD:  # the link's expiry would overflow
            raise ValueError("the time is more than ten years ahead")
        consultation, clear = self._records.schedule(practitioner_id, patient_id, scheduled_at)
        with transaction(self._conn) as conn:
            mail_id = self._appointments.invite(conn, consultation, clear[Role.PATIENT], letter)
        return consultation, clear, mail_id

    async def cancel(self, practitioner_id: str, consultation_id: str, letter: Letterhead) -> Change:
        """Cancel an appointment (see clinic.appointments.Appointments.cancel)."""
        return await self._run(self._appointments.cancel, practitioner_id, consultation_id, letter)

    async def move(self, practitioner_id: str, consultation_id: str, scheduled_at: datetime.datetime,
                   letter: Letterhead) -> Change:
        """Move an appointment (see clinic.appointments.Appointments.move)."""
        return await self._run(self._appointments.move, practitioner_id, consultation_id, scheduled_at, letter)

    async def join_pass(self, session_token: str, practitioner_id: str, consultation_id: str,
                        lifetime: datetime.timedelta) -> str:
        """A join pass for the day list's join button (see clinic.join_passes); revokes nothing."""
        return await self._run(self._passes.issue, session_token, practitioner_id, consultation_id, lifetime)

    # closing

    async def close_act(self, consultation_id: str, practitioner_id: str, *, base_url: str,
                        link_lifetime: datetime.timedelta, tz: datetime.tzinfo,
                        share: Collection[str] | None = None, practice_name: str = "Teleconsult") -> Closing:
        """Close the act (see clinic.closing.Closer.close)."""
        return await self._run(self._closer.close, consultation_id, practitioner_id, base_url=base_url,
                               link_lifetime=link_lifetime, tz=tz, share=share, practice_name=practice_name)

    async def patient_document_ids(self, consultation_id: str) -> list[str]:
        """The documents of a consultation the patient's link gives (not removed)."""
        return await self._run(live_document_ids, self._conn, consultation_id)

    # patient links

    async def usable_link(self, token: str) -> PatientLink:
        """The link behind a token if usable; NotFound or LinkGone."""
        return await self._run(self._links.usable, token)

    async def check_birth_date(self, token: str, date_of_birth: datetime.date, *, address: str,
                               per_minute: int, max_failures: int) -> tuple[PatientLink, str]:
        """Open a document session on the right date of birth (see PatientLinks.check_birth_date)."""
        return await self._run(self._links.check_birth_date, token, date_of_birth, address=address,
                               per_minute=per_minute, max_failures=max_failures)

    async def link_session(self, token: str, session_token: str) -> PatientLink:
        """The link if the session is live; NotFound or LinkGone."""
        return await self._run(self._links.session, token, session_token)

    async def document_opened(self, link: PatientLink, document_id: str, action: str) -> None:
        """Record a patient's view or download."""
        await self._run(self._links.document_opened, link, document_id, action)

    async def links(self, practitioner_id: str, patient_id: str) -> list[PatientLink]:
        """A record's patient links."""
        await self.patient(practitioner_id, patient_id)
        return await self._run(self._links.of_patient, patient_id)

    async def revoke_link(self, practitioner_id: str, patient_id: str, link_id: str) -> None:
        """Revoke one of a record's patient links."""
        await self.patient(practitioner_id, patient_id)
        await self._run(self._links.revoke, practitioner_id, patient_id, link_id)

    # mail queue

    async def mail_due(self, limit: int = 20) -> list[MailMessage]:
        """Messages due for an attempt."""
        return await self._run(self._mail.due, limit)

    async def mail_next_due_at(self) -> datetime.datetime | None:
        """When the next queued message is due."""
        return await self._run(self._mail.next_due_at)

    async def mail_sent(self, message_id: str) -> None:
        """Record a delivery."""
        await self._run(self._mail.mark_sent, message_id)

    async def mail_failed(self, message_id: str, error: str, *, retry_in: datetime.timedelta | None) -> None:
        """Record a failed attempt."""
        await self._run(self._mail.mark_failed, message_id, error, retry_in=retry_in)

    async def mail_get(self, message_id: str) -> MailMessage:
        """One message."""
        return await self._run(self._mail.get, message_id)

    async def mail_of_patient(self, practitioner_id: str, patient_id: str) -> list[MailMessage]:
        """A record's messages, for a practitioner with access."""
        await self.patient(practitioner_id, patient_id)
        return await self._run(self._mail.of_patient, patient_id)

    async def mail_recent(self, limit: int = 200) -> list[MailMessage]:
        """The latest messages (operator)."""
        return await self._run(self._mail.recent, limit)

    # audit

    async def audit(self, actor_kind: str, actor_id: str | None, action: str, *, patient_id: str | None = None,
                    consultation_id: str | None = None, document_id: str | None = None,
                    object_id: str | None = None) -> None:
        """Append one audit entry."""
        await self._run(self._audit, actor_kind, actor_id, action, patient_id, consultation_id, document_id,
                        object_id)

    def _audit(self, actor_kind: str, actor_id: str | None, action: str, patient_id: str | None,
               consultation_id: str | None, document_id: str | None, object_id: str | None) -> None:
        with transaction(self._conn) as conn:
            audit.append(conn, actor_kind, actor_id, action, patient_id=patient_id,
                         consultation_id=consultation_id, document_id=document_id, object_id=object_id)

    async def audit_of_patient(self, practitioner_id: str, patient_id: str) -> list[AuditEvent]:
        """A record's audit entries, newest first, for a practitioner with access."""
        await self.patient(practitioner_id, patient_id)
        return await self._run(audit.for_patient, self._conn, patient_id)

    async def audit_export(self, after_seq: int = 0, batch: int = 1000) -> list[AuditEvent]:
        """Up to `batch` entries after `after_seq`, oldest first (the operator's export)."""
        return await self._run(lambda: list(_take(audit.export(self._conn, after_seq, batch), batch)))

    async def audit_checkpoint(self, path: pathlib.Path) -> Checkpoint | None:
        """Append the chain's head to the checkpoint file at `path` if it moved; the head written, else None."""
        def work() -> Checkpoint | None:
            head = audit.head(self._conn)
            return head if head is not None and audit.write_checkpoint(path, head) else None
        return await self._run(work)

    async def audit_verify(self, checkpoints_path: pathlib.Path) -> Verdict:
        """Walk the whole chain and compare it with the checkpoints in `checkpoints_path`.

        ValueError if the checkpoint file is damaged.
        """
        return await self._run(lambda: audit.verify(self._conn, audit.read_checkpoints(checkpoints_path)))


def _take(events: Iterator[AuditEvent], n: int) -> list[AuditEvent]:
    out: list[AuditEvent] = []
    for event in events:
        out.append(event)
        if len(out) >= n:
            break
    return out
