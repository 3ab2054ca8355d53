"""Domain records of the clinic: immutable values, no storage concerns."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import types
from collections.abc import Mapping
from typing import Any, Final

from .errors import InvalidTransition


class Role(str, enum.Enum):
    """Which side of a consultation someone is on."""

    PRACTITIONER = "practitioner"
    PATIENT = "patient"


class ConsultationState(str, enum.Enum):
    """Lifecycle of one consultation."""

    SCHEDULED = "scheduled"
    WAITING = "waiting"
    IN_CALL = "in_call"
    ENDED = "ended"
    CLOSED = "closed"


class Stage(str, enum.Enum):
    """One side's place in the waiting-room handshake."""

    WAITING_ROOM = "waiting_room"
    JOINED = "joined"
    IN_CALL = "in_call"
    ENDED = "ended"


_S = ConsultationState

#: Allowed state changes (staying in the same state is always allowed too).
TRANSITIONS: Final[Mapping[ConsultationState, frozenset[ConsultationState]]] = (
    types.MappingProxyType(
        {
            _S.SCHEDULED: frozenset({_S.WAITING, _S.IN_CALL, _S.ENDED}),
            _S.WAITING: frozenset({_S.IN_CALL, _S.ENDED}),
            _S.IN_CALL: frozenset({_S.ENDED}),
            _S.ENDED: frozenset({_S.CLOSED}),
            _S.CLOSED: frozenset(),
        }
    )
)


def check_transition(old: ConsultationState, new: ConsultationState) -> None:
    """Raise InvalidTransition unless a consultation may go from `old` to `new`."""
    if old is new or new in TRANSITIONS[old]:
        return
    raise InvalidTransition(f"consultation cannot go from {old.value!r} to {new.value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class Practitioner:
    """A practitioner account (the password hash never leaves storage)."""

    id: str
    # kept out of repr so that logging the object never leaks personal data
    email: str = dataclasses.field(repr=False)
    display_name: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Patient:
    """A patient record; only the id is shown by repr()."""

    id: str
    name: str = dataclasses.field(repr=False)
    email: str = dataclasses.field(repr=False)
    date_of_birth: datetime.date = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class Consultation:
    """One scheduled video consultation between a practitioner and a patient."""

    id: str
    patient_id: str
    practitioner_id: str
    scheduled_at: datetime.datetime  # UTC, tz-aware
    state: ConsultationState
    practitioner_stage: Stage
    patient_stage: Stage

    def stage(self, role: Role) -> Stage:
        """Return the waiting-room stage of the side playing `role`."""
        if role is Role.PRACTITIONER:
            return self.practitioner_stage
        return self.patient_stage


@dataclasses.dataclass(frozen=True, slots=True)
class Invitation:
    """A link that lets one side of a consultation join it."""

    id: str
    consultation_id: str
    role: Role
    expires_at: datetime.datetime  # UTC, tz-aware
    revoked_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True, slots=True)
class DemoPractice:
    """What a demo run needs to know: credentials and the two join links."""

    base_url: str
    practitioner_email: str
    practitioner_password: str = dataclasses.field(repr=False)
    consultation_id: str
    practitioner_link: str = dataclasses.field(repr=False)
    patient_link: str = dataclasses.field(repr=False)

    def as_json(self) -> dict[str, Any]:
        """Return the JSON document printed for the operator (a fixed contract)."""
        return {
            "base_url": self.base_url,
            "practitioner": {
                "email": self.practitioner_email,
                "password": self.practitioner_password,
            },
            "consultation_id": self.consultation_id,
            "practitioner_link": self.practitioner_link,
            "patient_link": self.patient_link,
        }
