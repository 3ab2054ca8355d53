"""Domain records of the clinic: immutable values, no storage concerns."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import types
from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

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
    #: the language of the patient's mails
    language: str = "fr"


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
    cancelled_at: datetime.datetime | None = None
    #: bumped at each move or cancel: the calendar entry's SEQUENCE (RFC 5545)
    sequence: int = 0

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


VERDICTS: Final = ("good", "fair", "poor", "failed")
DEVICE_STATES: Final = ("on", "off", "missing")


def _check_number(name: str, value: float | None, high: float) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= high:
        raise ValueError(f"{name} must be a number between 0 and {high:g}, got {value!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class NetTest:
    """A connection test's outcome (docs/connection-test.md); numbers are None when not measured."""

    verdict: str
    reason: str | None = None  # why a test failed: "ice", "channel", "timeout", "server", "unsupported"
    rtt_ms: float | None = None
    jitter_ms: float | None = None
    loss_pct: float | None = None
    up_kbps: float | None = None
    down_kbps: float | None = None
    relay: bool | None = None  # None: no TURN server configured, so not asked

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if self.reason is not None and (not self.reason or len(self.reason) > 40):
            raise ValueError("reason must be a short code")
        _check_number("rtt_ms", self.rtt_ms, 60000)
        _check_number("jitter_ms", self.jitter_ms, 60000)
        _check_number("loss_pct", self.loss_pct, 100)
        _check_number("up_kbps", self.up_kbps, 10_000_000)
        _check_number("down_kbps", self.down_kbps, 10_000_000)


@dataclasses.dataclass(frozen=True, slots=True)
class Readiness:
    """What one side last reported from the waiting room: its devices and its connection test."""

    consultation_id: str
    role: Role
    mic: str  # "on", "off" or "missing"
    camera: str
    test: NetTest | None  # None: no test run yet
    tested_at: datetime.datetime | None  # UTC, when `test` was received
    updated_at: datetime.datetime  # UTC

    def __post_init__(self) -> None:
        for name in ("mic", "camera"):
            if getattr(self, name) not in DEVICE_STATES:
                raise ValueError(f"{name} must be one of {DEVICE_STATES}, got {getattr(self, name)!r}")

    def as_json(self) -> dict[str, Any]:
        """The `readiness` object of the protocol's `state` message."""
        test = None
        if self.test is not None:
            test = dataclasses.asdict(self.test)
        return {
            "mic": self.mic,
            "camera": self.camera,
            "test": test,
            "tested_at": None if self.tested_at is None else self.tested_at.isoformat(timespec="seconds"),
        }


#: Where a document comes from: shared in the chat, attached when closing, a call recording, a whiteboard.
DocumentSource = Literal["chat", "closing", "recording", "whiteboard"]
#: Who added a document.
DocumentAuthor = Literal["practitioner", "patient", "system"]
DOCUMENT_SOURCES: Final[tuple[str, ...]] = get_args(DocumentSource)
DOCUMENT_AUTHORS: Final[tuple[str, ...]] = get_args(DocumentAuthor)


@dataclasses.dataclass(frozen=True, slots=True)
class Document:
    """A file kept with a consultation (and so in its patient's record); one row of `document`."""

    id: str
    consultation_id: str
    patient_id: str
    source: DocumentSource
    # the sanitised file name is patient data: kept out of repr so logging never leaks it
    name: str = dataclasses.field(repr=False)
    media_type: str  # sniffed from the bytes, never taken from the label or the name
    size: int
    sha256: str
    added_by: DocumentAuthor
    created_at: str  # ISO-8601 UTC, as stored
    removed_at: str | None
