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


class DiskFull(SignalingError):
    """Free space in the data directory is below [storage] min_free_mb: nothing more is written."""
