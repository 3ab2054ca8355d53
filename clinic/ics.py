"""The calendar entry attached to appointment mails (RFC 5545, iTIP methods of RFC 5546).

One VEVENT per consultation: its UID never changes, its SEQUENCE is the
consultation's (bumped at each move or cancel), so calendar programs update or
remove the entry they already have.  It carries no health detail: practice,
practitioner, time and the personal link only.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Final

#: How long the calendar entry lasts (the product has no duration per appointment).
APPOINTMENT_LENGTH: Final = datetime.timedelta(minutes=30)
#: RFC 5545 3.1: content lines are folded at 75 octets.
LINE_OCTETS: Final = 75


@dataclasses.dataclass(frozen=True, slots=True)
class CalendarEvent:
    """What the entry says about one consultation."""

    consultation_id: str
    domain: str  # right-hand side of the UID: the sender's mail domain
    start: datetime.datetime  # tz-aware
    sequence: int
    summary: str
    organizer_name: str
    organizer_address: str
    attendee_address: str
    link: str | None  # None in a cancellation


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _param(value: str) -> str:
    # a parameter value is quoted, and a quote cannot appear inside (RFC 5545 3.2)
    return '"' + value.replace('"', "'").replace("\r", " ").replace("\n", " ") + '"'


def fold(line: str) -> list[str]:
    """One content line as lines of at most 75 octets, never splitting a UTF-8 character."""
    parts: list[str] = []
    current, size = "", 0
    for char in line:
        octets = len(char.encode("utf-8"))
        if size + octets > LINE_OCTETS:
            parts.append(current)
            current, size = " ", 1  # a continuation line starts with one space
        current += char
        size += octets
    parts.append(current)
    return parts


def _utc(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(event: CalendarEvent, *, cancel: bool, now: datetime.datetime) -> str:
    """The whole VCALENDAR: METHOD:REQUEST (invitation, move) or METHOD:CANCEL; CRLF line ends."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Teleconsult//Teleconsult//FR",
        "CALSCALE:GREGORIAN",
        f"METHOD:{'CANCEL' if cancel else 'REQUEST'}",
        "BEGIN:VEVENT",
        f"UID:{event.consultation_id}@{event.domain}",
        f"DTSTAMP:{_utc(now)}",
        f"DTSTART:{_utc(event.start)}",
        f"DTEND:{_utc(event.start + APPOINTMENT_LENGTH)}",
        f"SEQUENCE:{event.sequence:d}",
        f"STATUS:{'CANCELLED' if cancel else 'CONFIRMED'}",
        f"SUMMARY:{escape_text(event.summary)}",
        f"ORGANIZER;CN={_param(event.organizer_name)}:mailto:{event.organizer_address}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{event.attendee_address}",
    ]
    if event.link is not None:
        lines += [f"DESCRIPTION:{escape_text(event.link)}", f"URL:{event.link}"]
    lines += ["TRANSP:OPAQUE", "END:VEVENT", "END:VCALENDAR"]
    return "".join(part + "\r\n" for line in lines for part in fold(line))
