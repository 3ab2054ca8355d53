"""Pure pieces of the practice: mail texts and backoff, file headers, patient fields, link states."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from clinic import mail_templates
from clinic.patient_links import PatientLink
from clinic.records import check_patient_fields
from signaling.config import load_config
from signaling.downloads import inline_allowed
from signaling.mail_sender import Mailer, describe
from signaling.practice.auth import csrf_protected
from signaling.practice.texts import STRINGS, as_module
from signaling.practice.views import safe_next


def test_mail_texts_carry_the_link_and_nothing_else_personal() -> None:
    values = {"practice": "Cabinet", "practitioner": "Dr A", "expires": "4 avril 2030"}
    for language, greeting in (("fr", "Bonjour"), ("en", "Hello")):
        mail = mail_templates.render("documents", language, values, "https://x.example/d/TOKEN")
        assert "https://x.example/d/TOKEN" in mail.text and 'href="https://x.example/d/TOKEN"' in mail.html
        assert "TOKEN" not in mail.subject and "Cabinet" in mail.subject
        assert mail.text.startswith(greeting) and "4 avril 2030" in mail.text


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 30), (2, 60), (3, 120), (7, 1920), (8, 3600), (40, 3600)])
def test_backoff_doubles_and_is_capped(attempts: int, seconds: float, tmp_path: Path) -> None:
    mailer = Mailer(None, load_config(None).mail, tmp_path)  # type: ignore[arg-type]
    assert mailer.retry_delay(attempts) == datetime.timedelta(seconds=seconds)


def test_errors_are_described_without_the_servers_words() -> None:
    class SMTPRecipientsRefused(Exception):
        code = 550

    assert describe(SMTPRecipientsRefused("jeanne@example.org refused")) == "SMTPRecipientsRefused 550"
    assert describe(ConnectionRefusedError("x")) == "ConnectionRefusedError"


@pytest.mark.parametrize(("media_type", "inline"), [
    ("application/pdf", True), ("image/png", True), ("audio/ogg", True), ("video/webm", True),
    ("text/plain", False), ("application/octet-stream", False), ("text/html", False), ("image/svg+xml", False),
])
def test_only_safe_sniffed_types_are_inline(media_type: str, inline: bool) -> None:
    allowed = load_config(None).documents.allowed_types
    assert inline_allowed(media_type, allowed) is inline
    assert inline_allowed(media_type, []) is False  # a type the operator refused is never inline


@pytest.mark.parametrize(("value", "expected"), [
    (None, "/"), ("", "/"), ("/records/x", "/records/x"), ("//evil.example", "/"), ("https://evil.example", "/"),
    ("/\\evil", "/"),
])
def test_login_redirects_stay_on_this_site(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected


@pytest.mark.parametrize(("path", "checked"), [
    ("/login", True), ("/records/x/access", True), ("/c/TOKEN/closing/close", True),
    ("/c/TOKEN/closing/documents", True), ("/c/TOKEN/files", False), ("/d/TOKEN", True),
])
def test_csrf_covers_every_cookie_authorised_route(path: str, checked: bool) -> None:
    assert csrf_protected(path) is checked


@pytest.mark.parametrize(("name", "email", "birth", "error"), [
    ("", "a@b.org", datetime.date(1990, 1, 1), "name"),
    ("x" * 201, "a@b.org", datetime.date(1990, 1, 1), "name"),
    ("Jeanne", "", datetime.date(1990, 1, 1), "email"),
    ("Jeanne", "jeanne", datetime.date(1990, 1, 1), "email"),
    ("Jeanne", "a b@c.org", datetime.date(1990, 1, 1), "email"),
    ("Jeanne", "a@b.org", datetime.date(1899, 12, 31), "date of birth"),
    ("Jeanne", "a@b.org", datetime.date.today() + datetime.timedelta(days=2), "date of birth"),
])
def test_bad_patient_fields_are_named(name: str, email: str, birth: datetime.date, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        check_patient_fields(name, email, birth)


def test_patient_fields_are_cleaned() -> None:
    assert check_patient_fields("  Jeanne   Martin ", " Jeanne@Example.ORG ", datetime.date(1970, 5, 17)) == (
        "Jeanne Martin", "jeanne@example.org")


def test_link_states() -> None:
    now = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)
    day = datetime.timedelta(days=1)
    link = PatientLink("l", "p", "c", now + day, None, 0, None, None, None, now)
    assert link.state(now) == "active"
    assert link.state(now + 2 * day) == "expired"
    assert PatientLink("l", "p", "c", now + day, now, 0, None, None, None, now).state(now) == "revoked"
    assert PatientLink("l", "p", "c", now + day, None, 5, now, None, None, now).state(now) == "locked"


def test_every_string_has_french_and_english() -> None:
    for key, (fr, en) in STRINGS.items():
        assert fr.strip() and en.strip(), key
    module = as_module()
    assert module.startswith("// generated") and '"closing.close": {"fr": "Clôturer l\'acte"' in module


def test_every_data_i18n_key_of_the_pages_is_in_the_table() -> None:
    import re

    source = Path(__file__).resolve().parents[2]
    used = set()
    for path in [*(source / "signaling" / "practice").glob("html.py"), *(source / "web" / "js").glob("closing.js"),
                 *(source / "web" / "js").glob("practice.js")]:
        text = path.read_text()
        key = r'([a-z]+(?:\.[a-z0-9\-]+)+)"'
        used |= set(re.findall(r'\btr?\("' + key, text))
        used |= set(re.findall(r'(?:data-i18n|dataset\.i18n)\s*=\s*"' + key, text))
    assert len(used) > 50 and not used - set(STRINGS), used - set(STRINGS)
