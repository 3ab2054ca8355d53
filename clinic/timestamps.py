"""Conversions between tz-aware UTC datetimes and the ISO-8601 text we store."""

from __future__ import annotations

import datetime


def utc_now() -> datetime.datetime:
    """Return the current time, tz-aware, in UTC."""
    return datetime.datetime.now(datetime.UTC)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """Return `value` in UTC; naive datetimes are refused as ambiguous."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"datetime must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(datetime.UTC)


def to_text(value: datetime.datetime) -> str:
    """Encode an aware datetime as fixed-width ISO-8601 UTC text."""
    # fixed width (always microseconds) keeps text order equal to time order
    return as_utc(value).isoformat(timespec="microseconds")


def from_text(text: str) -> datetime.datetime:
    """Decode text written by to_text() back to an aware UTC datetime."""
    return as_utc(datetime.datetime.fromisoformat(text))


def date_to_text(value: datetime.date) -> str:
    """Encode a calendar date as YYYY-MM-DD."""
    if isinstance(value, datetime.datetime):
        raise ValueError("expected a date, got a datetime")
    return value.isoformat()


def date_from_text(text: str) -> datetime.date:
    """Decode YYYY-MM-DD text."""
    return datetime.date.fromisoformat(text)
