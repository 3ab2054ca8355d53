"""Errors of the SFU."""


class SfuError(Exception):
    """Base of the errors raised by the SFU."""


class MediaError(SfuError):
    """An offer cannot be answered (wrong media sections, no common codec...)."""


class ClosedError(SfuError):
    """The object was closed."""


class DiscoveryFailed(SfuError):
    """The STUN server did not tell the public address (no answer, or a bad one)."""
