"""Errors of the signaling layer; the only layer that turns errors into replies."""


class SignalingError(Exception):
    """Base of the errors raised here."""


class ConfigError(SignalingError):
    """The configuration file or an override is invalid; the message names the key."""


class ProtocolError(SignalingError):
    """A WebSocket message is malformed, unknown or out of order."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        # the refused message's type and id, when known before the error was raised
        self.ref_type: str | None = None
        self.ref_id: str | None = None


class DiskFull(SignalingError):
    """Free space for a storage folder is below [storage] min_free_mb: nothing more is written."""
