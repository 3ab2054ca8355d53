"""Exceptions of the recorder package."""

from __future__ import annotations


class RecorderError(Exception):
    """Base class of the recorder's own errors."""


class ManifestError(RecorderError):
    """A recording's manifest is missing, unreadable or not what we wrote."""


class ComposeError(RecorderError):
    """The raw tracks of a recording could not be composed into one video."""
