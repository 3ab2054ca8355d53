"""Exceptions raised by the clinic domain; only signaling/ maps them to HTTP."""

from __future__ import annotations


class ClinicError(Exception):
    """Base class of every error the clinic package raises on purpose."""


class NotFound(ClinicError):
    """A record (practitioner, patient, consultation, ...) does not exist."""


class InvitationNotFound(NotFound):
    """No invitation matches this token (unknown or malformed)."""


class InvitationExpired(ClinicError):
    """The invitation exists but its validity period is over."""


class InvitationRevoked(ClinicError):
    """The invitation exists but was revoked."""


class InvalidTransition(ClinicError):
    """A consultation state change that the state machine forbids."""


class TooManyAttempts(ClinicError):
    """Too many failed logins or date-of-birth checks recently: try again later.

    `scope` names the limit reached ("account" when a login is only slowed down);
    `retry_after` is the wait in seconds, when known.
    """

    def __init__(self, message: str, *, scope: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.scope = scope
        self.retry_after = retry_after


class WrongBirthDate(ClinicError):
    """The date of birth given for a patient link does not match the record."""

    def __init__(self, remaining: int) -> None:
        super().__init__(f"wrong date of birth, {remaining} attempts left")
        self.remaining = remaining


class LinkGone(ClinicError):
    """A patient's document link exists but is expired, revoked or locked (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"patient link is {reason}")
        self.reason = reason


class AlreadyExists(ClinicError):
    """A record with the same unique key exists (e.g. a practitioner email)."""


class DocumentTooLarge(ClinicError):
    """A document is bigger than the limit it was stored under."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"document is larger than the limit of {limit} bytes")
        self.limit = limit


class QuotaExceeded(ClinicError):
    """Storing more would pass a side's (`scope` "side") or a consultation's upload quota."""

    def __init__(self, scope: str, limit: int) -> None:
        super().__init__(f"the {scope}'s upload quota of {limit} bytes is used up")
        self.scope = scope
        self.limit = limit


class ActClosed(ClinicError):
    """The consultation's act is closed: nothing more may be added to it (but by the closing rules)."""


class DocumentTypeRefused(ClinicError):
    """A document's content (sniffed from its bytes) is not among the allowed types."""

    def __init__(self, media_type: str) -> None:
        super().__init__(f"documents of type {media_type} are not accepted")
        self.media_type = media_type


class ConstraintViolated(ClinicError):
    """The database refused a write: a unique key, a foreign key, or the append-only audit rule."""


class DatabaseUnavailable(ClinicError):
    """The configured PostgreSQL server cannot be reached (or refused our credentials)."""


class CopyRefused(ClinicError):
    """A database copy cannot start: the target already holds data, or the schemas differ."""


class AppointmentCancelled(InvitationRevoked):
    """The invitation's consultation was cancelled: its links no longer open anything."""


class AppointmentMoved(InvitationRevoked):
    """The link was replaced when its consultation was moved (the new one went by mail)."""


class AppointmentUnchangeable(ClinicError):
    """A cancel or a move of a consultation that is cancelled, started or closed (`reason`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the appointment cannot be changed: {reason}")
        self.reason = reason
