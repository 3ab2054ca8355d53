"""The pure parts of appointment mails: .ics folding and escaping, templates, the reminder delay."""

from __future__ import annotations

import datetime
import zoneinfo

import pytest
from helpers.ics import parse, unescape

from clinic import ics, mail_templates
from signaling.config import ConfigError, load_config, parse_delay

NOW = datetime.datetime(2030, 3, 4, 8, 0, tzinfo=datetime.UTC)


def event(summary: str, link: str | None = "https://x.example/c/TOKEN") -> ics.CalendarEvent:
    return ics.CalendarEvent(consultation_id="c" * 32, domain="x.example", start=NOW, sequence=3, summary=summary,
                             organizer_name='Cabinet "Les Tilleuls"', organizer_address="rdv@x.example",
                             attendee_address="p@example.org", link=link)


@pytest.mark.parametrize("summary", ["é" * 200, "a" * 74 + "€" * 50, "😀 " * 60, "short"])
def test_lines_are_folded_at_75_octets_without_splitting_a_character(summary: str) -> None:
    data = ics.calendar(event(summary), cancel=False, now=NOW).encode("utf-8")
    calendar = parse(data)  # the strict reader checks CRLF, 75 octets, nesting
    (vevent,) = calendar.children
    assert unescape(vevent.one("SUMMARY")) == summary
    assert vevent.one("SEQUENCE") == "3" and calendar.one("METHOD") == "REQUEST"


def test_text_values_are_escaped_and_a_cancel_has_no_link() -> None:
    summary = "a;b,c\\d\nline"
    calendar = parse(ics.calendar(event(summary, link=None), cancel=True, now=NOW).encode())
    (vevent,) = calendar.children
    assert vevent.one("SUMMARY") == "a\\;b\\,c\\\\d\\nline" and unescape(vevent.one("SUMMARY")) == summary
    assert calendar.one("METHOD") == "CANCEL" and vevent.one("STATUS") == "CANCELLED"
    assert "URL" not in vevent.properties and "DESCRIPTION" not in vevent.properties
    assert vevent.params("ORGANIZER")["CN"] == "Cabinet 'Les Tilleuls'"


def test_templates_escape_every_value_in_the_html_and_refuse_a_missing_one() -> None:
    values = {"practice": "<script>alert(1)</script>", "practitioner": "Dr O'Neil & Co", "when": "w",
              "old_when": "", "contact": "", "expires": "e"}
    mail = mail_templates.render("invitation", "en", values, "https://x.example/c/T?a=1&b=2")
    assert "<script>" not in mail.html and "&lt;script&gt;" in mail.html
    assert "Dr O&#x27;Neil &amp; Co" in mail.html and 'href="https://x.example/c/T?a=1&amp;b=2"' in mail.html
    assert "<script>alert(1)</script>" in mail.text  # the plain text is plain
    with pytest.raises(KeyError):
        mail_templates.render("moved", "fr", {"practice": "p", "practitioner": "d", "when": "w"}, "https://x")
    for kind in mail_templates.KINDS:
        for language in mail_templates.LANGUAGES:
            assert mail_templates.render(kind, language, values, None).subject


def test_dates_read_naturally_in_each_language() -> None:
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    assert mail_templates.when_text(NOW, paris, "fr") == "4 mars 2030 à 09:00 (Europe/Paris)"
    assert mail_templates.when_text(NOW, paris, "en") == "4 March 2030 at 09:00 (Europe/Paris)"


@pytest.mark.parametrize(("text", "delay"), [("0", 0), ("24h", 86400), ("90m", 5400), ("2d", 172800)])
def test_reminder_delays(text: str, delay: int) -> None:
    assert parse_delay(text) == datetime.timedelta(seconds=delay)


@pytest.mark.parametrize("text", ["", "h", "24", "-1h", "1.5h", "24 hours", "61d"])
def test_bad_reminder_delays_name_the_key(text: str) -> None:
    with pytest.raises(ConfigError, match="mail.reminder_before"):
        load_config(None, **{"mail.reminder_before": text})
