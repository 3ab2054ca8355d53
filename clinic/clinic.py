"""The async facade of the clinic: every blocking call runs in one worker thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import functools
import logging
import pathlib
import sqlite3
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from . import demo, tokens
from .agenda import Agenda
from .database import connect
from .errors import ClinicError, InvitationNotFound
from .migrations import migrate
from .models import (
    Consultation,
    ConsultationState,
    DemoPractice,
    Invitation,
    NetTest,
    Patient,
    Practitioner,
    Readiness,
    Role,
    Stage,
)
from .passwords import Passwords
from .practice import Practice
from .readiness import ReadinessBook
from .registry import Registry

logger = logging.getLogger(__name__)

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _Backend:
    """The blocking half, built and used only inside the worker thread."""

    def __init__(self, db_path: pathlib.Path, invitation_lifetime: datetime.timedelta) -> None:
        self.conn: sqlite3.Connection = connect(db_path)
        try:
            migrate(self.conn)
            self.registry = Registry(self.conn, Passwords())
            self.agenda = Agenda(self.conn, self.registry, invitation_lifetime=invitation_lifetime)
            self.readiness = ReadinessBook(self.conn)
        except BaseException:
            self.conn.close()
            raise


def _discard(opening: concurrent.futures.Future[_Backend]) -> None:
    """Close the connection of a backend whose opener gave up waiting for it."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result().conn.close()


class Clinic:
    """Practitioners, patients, consultations and invitations, behind an async API.

    Create with `await Clinic.open(...)`, finish with `await clinic.close()`.
    SQLite and argon2 work runs in a single dedicated thread that owns the connection,
    so the event loop never blocks and the connection is never shared across threads.
    """

    def __init__(self, executor: concurrent.futures.ThreadPoolExecutor, backend: _Backend) -> None:
        """Wrap an opened backend; use Clinic.open() rather than calling this."""
        self._executor = executor
        self._backend = backend
        self._closed = False

    @classmethod
    async def open(
        cls, db_path: pathlib.Path, *, invitation_lifetime: datetime.timedelta
    ) -> Clinic:
        """Open (or create) the database at `db_path` and bring its schema up to date."""
        if invitation_lifetime < datetime.timedelta(0):
            raise ValueError(f"invitation_lifetime must not be negative, got {invitation_lifetime}")
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="clinic-db"
        )
        opening = executor.submit(_Backend, pathlib.Path(db_path), invitation_lifetime)
        try:
            backend = await asyncio.wrap_future(opening)
        except BaseException:
            # if cancelled mid-open, the worker closes what it built, then exits
            executor.submit(_discard, opening)
            executor.shutdown(wait=False)
            raise
        logger.info("Clinic opened %s", db_path)
        return cls(executor, backend)

    async def close(self) -> None:
        """Close the database and stop the worker thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        try:
            # queued after every pending call, so those finish first
            await loop.run_in_executor(self._executor, self._backend.conn.close)
        finally:
            # joining the idle worker is quick, but still not done on the loop itself
            await asyncio.to_thread(self._executor.shutdown, wait=True)
        logger.info("Clinic closed")

    async def _run(self, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
        """Run `fn` in the worker thread and wait for its result."""
        if self._closed:
            raise ClinicError("clinic is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    # practitioners

    async def add_practitioner(self, email: str, password: str, display_name: str) -> Practitioner:
        """Create a practitioner account; AlreadyExists if the email is taken."""
        return await self._run(
            self._backend.registry.add_practitioner, email, password, display_name
        )

    async def verify_practitioner(self, email: str, password: str) -> Practitioner | None:
        """Return the practitioner if the password matches, else None."""
        return await self._run(self._backend.registry.verify_practitioner, email, password)

    async def set_practitioner_password(self, practitioner_id: str, password: str) -> None:
        """Replace a practitioner's password; NotFound if the id is unknown."""
        await self._run(self._backend.registry.set_practitioner_password, practitioner_id, password)

    async def find_practitioner(self, email: str) -> Practitioner | None:
        """Return the practitioner with this email, or None."""
        return await self._run(self._backend.registry.find_practitioner, email)

    async def get_practitioner(self, practitioner_id: str) -> Practitioner:
        """Return the practitioner with this id; NotFound otherwise."""
        return await self._run(self._backend.registry.get_practitioner, practitioner_id)

    # patients and access

    async def add_patient(self, name: str, email: str, date_of_birth: datetime.date) -> Patient:
        """Create a patient record."""
        return await self._run(self._backend.registry.add_patient, name, email, date_of_birth)

    async def get_patient(self, patient_id: str) -> Patient:
        """Return the patient with this id; NotFound otherwise."""
        return await self._run(self._backend.registry.get_patient, patient_id)

    async def grant_access(self, practitioner_id: str, patient_id: str) -> None:
        """Let a practitioner see a patient (idempotent); NotFound if either is unknown."""
        await self._run(self._backend.registry.grant_access, practitioner_id, patient_id)

    async def has_access(self, practitioner_id: str, patient_id: str) -> bool:
        """Tell whether a practitioner may see a patient."""
        return await self._run(self._backend.registry.has_access, practitioner_id, patient_id)

    @functools.cached_property
    def practice(self) -> Practice:
        """Accounts, records, patient links, mail queue and audit (clinic/practice.py)."""
        return Practice(self._run, self._backend.conn, self._backend.registry, self._backend.agenda)

    # consultations and invitations

    async def schedule_consultation(
        self, patient_id: str, practitioner_id: str, scheduled_at: datetime.datetime
    ) -> tuple[Consultation, dict[Role, str]]:
        """Create a consultation and one invitation per side, atomically.

        Returns the clear tokens, which are not stored and cannot be read back later.
        NotFound if the practitioner has no access to the patient.
        """
        return await self._run(
            self._backend.agenda.schedule_consultation, patient_id, practitioner_id, scheduled_at
        )

    async def resolve_invitation(self, token: str) -> Invitation:
        """Return the usable invitation behind `token`.

        Raises InvitationNotFound, InvitationExpired or InvitationRevoked.
        """
        # malformed input is refused here, without a trip to the database
        if not tokens.is_well_formed(token):
            raise InvitationNotFound("no invitation for this token")
        return await self._run(self._backend.agenda.resolve_invitation, token)

    async def revoke_invitation(self, invitation_id: str) -> None:
        """Revoke an invitation (idempotent); InvitationNotFound if the id is unknown."""
        await self._run(self._backend.agenda.revoke_invitation, invitation_id)

    async def get_consultation(self, consultation_id: str) -> Consultation:
        """Return the consultation with this id; NotFound otherwise."""
        return await self._run(self._backend.agenda.get_consultation, consultation_id)

    async def update_consultation(
        self,
        consultation_id: str,
        *,
        state: ConsultationState,
        practitioner_stage: Stage,
        patient_stage: Stage,
    ) -> Consultation:
        """Set state and both stages in one transaction; InvalidTransition if not allowed."""
        return await self._run(
            self._backend.agenda.update_consultation,
            consultation_id,
            state=state,
            practitioner_stage=practitioner_stage,
            patient_stage=patient_stage,
        )

    # readiness (waiting room: devices and connection test)

    async def save_readiness(
        self, consultation_id: str, role: Role, *, mic: str, camera: str, test: NetTest | None
    ) -> Readiness:
        """Store a side's device state and, when given, its latest connection test.

        `test=None` keeps the test stored before.  ValueError on a bad value,
        NotFound if the consultation is unknown.
        """
        return await self._run(
            self._backend.readiness.save, consultation_id, role, mic=mic, camera=camera, test=test
        )

    async def get_readiness(self, consultation_id: str) -> dict[Role, Readiness]:
        """Each side's latest readiness, for the sides that reported one."""
        return await self._run(self._backend.readiness.get, consultation_id)

    # demo

    async def ensure_demo(self, base_url: str, data_dir: pathlib.Path) -> DemoPractice:
        """Create or reuse the demo practice and schedule a new consultation starting now.

        The demo password lives in data_dir/demo-credentials.json (mode 0o600).
        """
        return await self._run(
            demo.ensure_demo,
            self._backend.registry,
            self._backend.agenda,
            base_url,
            pathlib.Path(data_dir),
        )
