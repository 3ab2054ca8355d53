"""Consultations and their invitations (sync, worker thread)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid

from . import join_passes, timestamps, tokens
from .database import Database, Row, transaction
from .errors import (
    AppointmentCancelled,
    AppointmentMoved,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    NotFound,
)
from .models import Consultation, ConsultationState, Invitation, Role, Stage, check_transition
from .registry import Registry

logger = logging.getLogger(__name__)


def _consultation(row: Row) -> Consultation:
    return Consultation(
        id=row["id"],
        patient_id=row["patient_id"],
        practitioner_id=row["practitioner_id"],
        scheduled_at=timestamps.from_text(row["scheduled_at"]),
        state=ConsultationState(row["state"]),
        practitioner_stage=Stage(row["practitioner_stage"]),
        patient_stage=Stage(row["patient_stage"]),
        cancelled_at=None if row["cancelled_at"] is None else timestamps.from_text(row["cancelled_at"]),
        sequence=row["sequence"],
    )


def _invitation(row: Row) -> Invitation:
    revoked_at = row["revoked_at"]
    return Invitation(
        id=row["id"],
        consultation_id=row["consultation_id"],
        role=Role(row["role"]),
        expires_at=timestamps.from_text(row["expires_at"]),
        revoked_at=None if revoked_at is None else timestamps.from_text(revoked_at),
    )


class Agenda:
    """Scheduling, state changes and invitation links of consultations.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(
        self,
        conn: Database,
        registry: Registry,
        *,
        invitation_lifetime: datetime.timedelta,
    ) -> None:
        """Work on `conn`; invitations stay valid `invitation_lifetime` past the start."""
        if invitation_lifetime < datetime.timedelta(0):
            raise ValueError(f"invitation_lifetime must not be negative, got {invitation_lifetime}")
        self._conn = conn
        self._registry = registry
        self._invitation_lifetime = invitation_lifetime

    def schedule_consultation(
        self, patient_id: str, practitioner_id: str, scheduled_at: datetime.datetime
    ) -> tuple[Consultation, dict[Role, str]]:
        """Create a consultation and one invitation per side; return the clear tokens once."""
        scheduled_at = timestamps.as_utc(scheduled_at)
        if not self._registry.has_access(practitioner_id, patient_id):
            # same answer for "no such person" and "no grant": do not reveal which
            raise NotFound(
                f"practitioner {practitioner_id!r} has no access to patient {patient_id!r}"
            )
        now = timestamps.utc_now()
        consultation = Consultation(
            id=uuid.uuid4().hex,
            patient_id=patient_id,
            practitioner_id=practitioner_id,
            scheduled_at=scheduled_at,
            state=ConsultationState.SCHEDULED,
            practitioner_stage=Stage.WAITING_ROOM,
            patient_stage=Stage.WAITING_ROOM,
        )
        expires_at = timestamps.to_text(max(now, scheduled_at) + self._invitation_lifetime)
        clear = {role: tokens.new_token() for role in Role}
        with transaction(self._conn) as conn:
            conn.execute(
                "INSERT INTO consultation (id, patient_id, practitioner_id, scheduled_at, state,"
                " practitioner_stage, patient_stage, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    consultation.id,
                    patient_id,
                    practitioner_id,
                    timestamps.to_text(scheduled_at),
                    consultation.state.value,
                    consultation.practitioner_stage.value,
                    consultation.patient_stage.value,
                    timestamps.to_text(now),
                    timestamps.to_text(now),
                ),
            )
            for role, token in clear.items():
                conn.execute(
                    "INSERT INTO invitation (id, consultation_id, role, token_hash, expires_at,"
                    " revoked_at, created_at) VALUES (?, ?, ?, ?, ?, NULL, ?)",
                    (
                        uuid.uuid4().hex,
                        consultation.id,
                        role.value,
                        tokens.token_hash(token),
                        expires_at,
                        timestamps.to_text(now),
                    ),
                )
        logger.info(
            "Consultation(%s) scheduled for Practitioner(%s) and Patient(%s)",
            consultation.id,
            practitioner_id,
            patient_id,
        )
        return consultation, clear

    def get_consultation(self, consultation_id: str) -> Consultation:
        """Return the consultation with this id; NotFound otherwise."""
        row = self._conn.execute(
            "SELECT * FROM consultation WHERE id = ?", (consultation_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no consultation {consultation_id!r}")
        return _consultation(row)

    def update_consultation(
        self,
        consultation_id: str,
        *,
        state: ConsultationState,
        practitioner_stage: Stage,
        patient_stage: Stage,
    ) -> Consultation:
        """Move a consultation to `state` and set both stages, in one transaction."""
        state = ConsultationState(state)
        practitioner_stage = Stage(practitioner_stage)
        patient_stage = Stage(patient_stage)
        with transaction(self._conn):
            old = self.get_consultation(consultation_id)
            check_transition(old.state, state)
            self._conn.execute(
                "UPDATE consultation SET state = ?, practitioner_stage = ?, patient_stage = ?,"
                " updated_at = ? WHERE id = ?",
                (
                    state.value,
                    practitioner_stage.value,
                    patient_stage.value,
                    timestamps.to_text(timestamps.utc_now()),
                    consultation_id,
                ),
            )
        if old.state is not state:
            logger.info("Consultation(%s) %s -> %s", consultation_id, old.state.value, state.value)
        return dataclasses.replace(old, state=state, practitioner_stage=practitioner_stage,
                                   patient_stage=patient_stage)

    def resolve_invitation(self, token: str) -> Invitation:
        """Return the live invitation behind `token`, or raise why it cannot be used."""
        # malformed input never reaches the database
        if not tokens.is_well_formed(token):
            raise InvitationNotFound("no invitation for this token")
        row = self._conn.execute(
            "SELECT * FROM invitation WHERE token_hash = ?", (tokens.token_hash(token),)
        ).fetchone()
        invitation = _invitation(row) if row is not None else join_passes.resolve(self._conn, tokens.token_hash(token))
        if invitation is None:
            if self._conn.execute("SELECT 1 FROM retired_invitation WHERE token_hash = ?",
                                  (tokens.token_hash(token),)).fetchone() is not None:
                raise AppointmentMoved("this link was replaced when the appointment was moved")
            raise InvitationNotFound("no invitation for this token")
        if invitation.revoked_at is not None:
            if self.get_consultation(invitation.consultation_id).cancelled_at is not None:
                raise AppointmentCancelled(f"invitation {invitation.id!r}: the appointment was cancelled")
            raise InvitationRevoked(f"invitation {invitation.id!r} was revoked")
        if timestamps.utc_now() >= invitation.expires_at:
            raise InvitationExpired(f"invitation {invitation.id!r} has expired")
        return invitation

    def revoke_invitation(self, invitation_id: str) -> None:
        """Revoke an invitation (idempotent); InvitationNotFound if the id is unknown."""
        with transaction(self._conn) as conn:
            cursor = conn.execute(
                "UPDATE invitation SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
                (timestamps.to_text(timestamps.utc_now()), invitation_id),
            )
            if cursor.rowcount == 0:
                raise InvitationNotFound(f"no invitation {invitation_id!r}")
        logger.info("Invitation(%s) revoked", invitation_id)

    def renew_invitations(self, conn: Database, consultation_id: str,
                          scheduled_at: datetime.datetime) -> dict[Role, str]:
        """New tokens for both sides of a moved consultation (inside the caller's transaction).

        The old hashes are kept in `retired_invitation`, so an old link says
        "moved" instead of "unknown"; returns the clear tokens once.
        """
        now = timestamps.utc_now()
        expires_at = timestamps.to_text(max(now, scheduled_at) + self._invitation_lifetime)
        clear = {role: tokens.new_token() for role in Role}
        for row in conn.execute("SELECT token_hash FROM invitation WHERE consultation_id = ?",
                                (consultation_id,)).fetchall():
            conn.execute("INSERT INTO retired_invitation (token_hash, consultation_id, retired_at) VALUES (?, ?, ?)"
                         " ON CONFLICT (token_hash) DO NOTHING",
                         (row["token_hash"], consultation_id, timestamps.to_text(now)))
        for role, token in clear.items():
            conn.execute("UPDATE invitation SET token_hash = ?, expires_at = ?, revoked_at = NULL"
                         " WHERE consultation_id = ? AND role = ?",
                         (tokens.token_hash(token), expires_at, consultation_id, role.value))
        return clear

    def revoke_all(self, conn: Database, consultation_id: str) -> int:
        """Revoke every live invitation of a consultation, both sides (inside the caller's transaction)."""
        cursor = conn.execute("UPDATE invitation SET revoked_at = ? WHERE consultation_id = ? AND revoked_at IS NULL",
                              (timestamps.to_text(timestamps.utc_now()), consultation_id))
        return cursor.rowcount
