"""Appointment mails, reminders, cancel and move over real HTTP, a real SMTP server (aiosmtpd), both engines."""

from __future__ import annotations

import contextlib
import datetime
import email.message
import io
import json
import re
import sqlite3
import zipfile
import zoneinfo
from contextlib import asynccontextmanager
from pathlib import Path
from collections.abc import AsyncIterator
from typing import Any

from helpers.databases import TestDatabase
from helpers.ics import Component, parse, unescape
from helpers.practice import Browserless, Inbox, smtp_server
from helpers.server import Running, running_server

from clinic import timestamps
from signaling.keys import MAILER

PASSWORD = "correct horse battery"
PRACTICE = "Cabinet des Tilleuls"
TZ = zoneinfo.ZoneInfo("Europe/Paris")


@asynccontextmanager
async def practice_server(tmp_path: Path, database: TestDatabase, data: str = "data",
                          **extra: Any) -> AsyncIterator[tuple[Running, Inbox, TestDatabase]]:
    """A server on `database`'s engine mailing through aiosmtpd; the database seen from outside."""
    async with smtp_server() as (inbox, port):
        overrides: dict[str, Any] = {
            "mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none",
            "mail.sender": "Cabinet <rdv@tilleuls.example>", "practice.name": PRACTICE,
            "mail.reminder_before": "24h", "practice.contact": "01 23 45 67 89", **extra,
        }
        outside = database
        if database.kind == "postgresql":
            overrides["database.url"] = str(database.target)
        else:
            outside = TestDatabase("sqlite", tmp_path / data / "teleconsult.sqlite3", database.documents)
        async with running_server(tmp_path / data, **overrides) as server:
            yield server, inbox, outside


def change(db: TestDatabase, statement: str, params: tuple[Any, ...]) -> None:
    """Write from outside the server, committed (sqlite3's default would leave it in an open transaction)."""
    if db.kind == "sqlite":
        with contextlib.closing(sqlite3.connect(db.target, isolation_level=None)) as conn:
            conn.execute(statement, params)
    else:
        db.rows(statement, params)


async def alice(server: Running) -> Browserless:
    """Dr Alice Durand's account, logged in."""
    await server.clinic.add_practitioner("alice@example.org", PASSWORD, "Dr Alice Durand")
    return await login(server, "alice@example.org")


async def login(server: Running, email_: str) -> Browserless:
    c = Browserless(server.base_url)
    response = await c.login(email_, PASSWORD)
    assert response.status == 303
    return c


async def new_patient(c: Browserless, language: str) -> str:
    response, _ = await c.post("/patients/new", {"name": "Jeanne Martin", "email": "jeanne@example.org",
                                                 "date_of_birth": "1970-05-17", "language": language},
                               csrf_from="/patients/new")
    assert response.status == 303
    return response.headers["Location"].rsplit("/", 1)[1]


def parts(message: email.message.EmailMessage) -> tuple[str, str, Component, str]:
    """The plain text, the HTML, the parsed .ics and its METHOD parameter of one mail."""
    plain = message.get_body(preferencelist=("plain",))
    rich = message.get_body(preferencelist=("html",))
    assert plain is not None and rich is not None
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/calendar"
    raw = attachment.get_payload(decode=True)
    assert isinstance(raw, bytes)
    return str(plain.get_content()), str(rich.get_content()), parse(raw), str(attachment.get_param("method"))


def no_health_detail(*texts: str) -> None:
    for text in texts:
        # the patient's name and birth date, the reason, notes: never in a mail
        for forbidden in ("Jeanne", "Martin", "1970", "17/05", "motif", "reason", "note"):
            assert forbidden not in text, forbidden


def event_of(calendar: Component) -> Component:
    (event,) = calendar.children
    assert event.name == "VEVENT"
    return event


def utc(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)


async def test_mails_cancel_and_move_end_to_end(tmp_path: Path, database: TestDatabase) -> None:
    async with practice_server(tmp_path, database) as (server, inbox, db):
        a = await alice(server)
        await server.clinic.add_practitioner("bob@example.org", PASSWORD, "Dr Bob")
        b = await login(server, "bob@example.org")
        try:
            patient_id = await new_patient(a, "en")
            day = (datetime.datetime.now(TZ) + datetime.timedelta(days=3)).date()
            record = f"/records/{patient_id}"
            response, _ = await a.post(f"{record}/consultations", {"date": day.isoformat(), "time": "10:00"},
                                       csrf_from=record)
            assert response.status == 303
            (invitation,) = await inbox.wait(1)
            start = datetime.datetime.combine(day, datetime.time(10, 0), TZ)

            # the invitation: English, names of the practice and the practitioner, text + HTML + .ics
            text, rich, calendar, method = parts(invitation)
            assert invitation["Subject"].startswith("Your video consultation on") and PRACTICE in invitation["Subject"]
            for part in (text, rich):
                assert PRACTICE in part and "Dr Alice Durand" in part and "at 10:00" in part
            assert "Hello" in text and "Bonjour" not in text and '<html lang="en">' in rich
            link = re.search(re.escape(server.base_url) + r"/c/[A-Za-z0-9_-]+", text)
            assert link and f'href="{link.group(0)}"' in rich
            no_health_detail(text, rich, invitation["Subject"])
            assert method == "REQUEST" and calendar.one("METHOD") == "REQUEST" and calendar.one("VERSION") == "2.0"
            event = event_of(calendar)
            consultation_id = event.one("UID").split("@")[0]
            assert event.one("UID") == f"{consultation_id}@tilleuls.example"
            assert utc(event.one("DTSTART")) == start and event.one("SEQUENCE") == "0"
            assert event.one("STATUS") == "CONFIRMED" and event.one("URL") == link.group(0)
            assert "Dr Alice Durand" in unescape(event.one("SUMMARY"))
            assert event.one("ORGANIZER").endswith("rdv@tilleuls.example")
            old_link = link.group(0).removeprefix(server.base_url)

            # the reminder waits in the database, due 24 h before
            ((kind, state, due),) = db.rows("SELECT kind, state, next_attempt_at FROM mail_message"
                                            " WHERE kind = 'reminder'")
            assert state == "queued" and datetime.datetime.fromisoformat(due) == start - datetime.timedelta(hours=24)
            # not "late" before its time: the readiness check measures from there
            (reminder,) = [m for m in await server.clinic.practice.mail_recent() if m.kind == "reminder"]
            assert reminder.waiting_since == start - datetime.timedelta(hours=24)

            # bad input: nothing changes
            before = db.rows("SELECT scheduled_at, sequence, cancelled_at FROM consultation")
            audit_before = db.rows("SELECT COUNT(*) FROM audit_event WHERE action <> 'record.view'")
            move = f"/consultations/{consultation_id}/move"
            response, page = await a.post(move, {"date": "2030-02-30", "time": "10:00", "next": record},
                                          csrf_from=record)
            assert response.status == 400 and 'data-error="error.when"' in page
            yesterday = (datetime.datetime.now(TZ) - datetime.timedelta(days=1)).date().isoformat()
            response, page = await a.post(move, {"date": yesterday, "time": "10:00", "next": record},
                                          csrf_from=record)
            assert response.status == 400 and 'data-error="error.when-past"' in page
            response, page = await a.post(move, {"date": "9999-12-31", "time": "23:59", "next": record},
                                          csrf_from=record)
            assert response.status == 400 and 'data-error="error.when"' in page
            response, page = await b.post(move, {"date": "2031-01-01", "time": "10:00"}, csrf_from="/")
            assert response.status == 404  # another practitioner's consultation looks missing
            response, page = await b.post(f"/consultations/{consultation_id}/cancel", {}, csrf_from="/")
            assert response.status == 404
            response, page = await a.post(f"/consultations/{'0' * 32}/cancel", {}, csrf_from="/")
            assert response.status == 404
            assert db.rows("SELECT scheduled_at, sequence, cancelled_at FROM consultation") == before
            assert db.rows("SELECT COUNT(*) FROM audit_event WHERE action <> 'record.view'") == audit_before
            assert (await a.get(old_link))[0].status == 200  # the link still works

            # move: a new link mailed, the old one says "moved", the reminder follows
            new_day = day + datetime.timedelta(days=2)
            response, _ = await a.post(move, {"date": new_day.isoformat(), "time": "15:30", "next": record},
                                       csrf_from=record)
            assert response.status == 303 and response.headers["Location"] == record + "?changed=moved"
            _, page = await a.get(response.headers["Location"])
            assert 'data-testid="form-notice"' in page and "Rendez-vous déplacé" in page
            moved = (await inbox.wait(2))[1]
            text, rich, calendar, method = parts(moved)
            new_start = datetime.datetime.combine(new_day, datetime.time(15, 30), TZ)
            assert "moved" in moved["Subject"] and "at 15:30" in text and "at 10:00" in text  # new and old times
            no_health_detail(text, rich)
            event = event_of(calendar)
            assert method == "REQUEST" and event.one("UID") == f"{consultation_id}@tilleuls.example"
            assert event.one("SEQUENCE") == "1" and utc(event.one("DTSTART")) == new_start
            new_link = event.one("URL").removeprefix(server.base_url)
            assert new_link != old_link and new_link in text
            response, page = await a.get(old_link)
            assert response.status == 410 and "déplacé" in page and "moved" in page
            assert (await a.get(new_link))[0].status == 200
            reminders = sorted(db.rows("SELECT state, next_attempt_at FROM mail_message WHERE kind = 'reminder'"))
            assert [r[0] for r in reminders] == ["queued", "withdrawn"]
            assert datetime.datetime.fromisoformat(reminders[0][1]) == new_start - datetime.timedelta(hours=24)

            # cancel: every link dead, the patient told, the day list shows it
            response, _ = await a.post(f"/consultations/{consultation_id}/cancel",
                                       {"next": f"/?day={new_day.isoformat()}"}, csrf_from="/")
            assert response.status == 303
            cancelled = (await inbox.wait(3))[2]
            text, rich, calendar, method = parts(cancelled)
            assert "cancelled" in cancelled["Subject"] and "/c/" not in text and "/c/" not in rich
            assert "01 23 45 67 89" in text  # the practice's contact
            no_health_detail(text, rich)
            event = event_of(calendar)
            assert method == "CANCEL" and calendar.one("METHOD") == "CANCEL"
            assert event.one("STATUS") == "CANCELLED" and event.one("SEQUENCE") == "2"
            assert event.one("UID") == f"{consultation_id}@tilleuls.example"
            response, page = await a.get(new_link)
            assert response.status == 410 and "annulé" in page and "cancelled" in page
            assert db.rows("SELECT COUNT(*) FROM invitation WHERE consultation_id = ? AND revoked_at IS NULL",
                           (consultation_id,)) == [(0,)]
            response, _ = await a.post(f"/consultations/{consultation_id}/join", {}, csrf_from="/")
            assert response.status == 404  # no way back in through the day list either
            assert [r[0] for r in db.rows("SELECT state FROM mail_message WHERE kind = 'reminder'")] == \
                ["withdrawn", "withdrawn"]
            _, page = await a.get(f"/?day={new_day.isoformat()}")
            assert 'data-status="cancelled"' in page and 'data-testid="join-consultation"' not in page
            assert 'data-testid="appointment-cancel"' not in page
            actions = [r[0] for r in db.rows("SELECT action FROM audit_event WHERE consultation_id = ? ORDER BY seq",
                                             (consultation_id,))]
            assert "consultation.move" in actions and actions.index("consultation.move") < \
                actions.index("consultation.cancel")

            # a cancelled act cannot be cancelled or moved again
            response, page = await a.post(f"/consultations/{consultation_id}/cancel", {}, csrf_from="/")
            assert response.status == 409 and 'data-error="error.appointment-cancelled"' in page
            response, page = await a.post(move, {"date": "2031-01-01", "time": "10:00"}, csrf_from="/")
            assert response.status == 409 and 'data-error="error.appointment-cancelled"' in page
            assert len(inbox.messages) == 3
            response, archive = await a.get_bytes(f"{record}/export")  # the record's archive says so too
            assert response.status == 200
            with zipfile.ZipFile(io.BytesIO(archive)) as z:
                (exported,) = json.loads(z.read("consultations.json"))
            assert exported["id"] == consultation_id and exported["cancelled_at"] is not None
            verdict = await server.clinic.practice.audit_verify(tmp_path / "no-checkpoints")
            assert verdict.ok, verdict
        finally:
            await a.close()
            await b.close()


async def test_a_closed_act_cannot_be_moved_and_french_is_the_default(tmp_path: Path, database: TestDatabase) -> None:
    async with practice_server(tmp_path, database) as (server, inbox, db):
        a = await alice(server)
        try:
            response, _ = await a.post("/patients/new", {"name": "Jeanne Martin", "email": "jeanne@example.org",
                                                         "date_of_birth": "1970-05-17", "language": "de"},
                                       csrf_from="/patients/new")
            assert response.status == 400  # an unknown language is refused, nothing created
            assert db.rows("SELECT COUNT(*) FROM patient") == [(0,)]
            response, _ = await a.post("/patients/new", {"name": "Jeanne Martin", "email": "jeanne@example.org",
                                                         "date_of_birth": "1970-05-17"}, csrf_from="/patients/new")
            patient_id = response.headers["Location"].rsplit("/", 1)[1]
            response, page = await a.post(f"/records/{patient_id}/consultations",
                                          {"date": "9999-12-31", "time": "23:59"}, csrf_from=f"/records/{patient_id}")
            assert response.status == 400 and 'data-error="error.when"' in page  # not a server error
            when = datetime.datetime.now(TZ) + datetime.timedelta(hours=2)
            response, _ = await a.post(f"/records/{patient_id}/consultations",
                                       {"date": when.date().isoformat(), "time": when.strftime("%H:%M")},
                                       csrf_from=f"/records/{patient_id}")
            assert response.status == 303
            ((consultation_id,),) = db.rows("SELECT id FROM consultation")
            (message,) = await inbox.wait(1)
            text, rich, _, _ = parts(message)
            assert "Bonjour" in text and "Hello" not in text and '<html lang="fr">' in rich
            # two hours ahead is closer than the 24 h reminder: none is queued
            assert db.rows("SELECT COUNT(*) FROM mail_message WHERE kind = 'reminder'") == [(0,)]
            change(db, "UPDATE consultation SET state = 'closed' WHERE id = ?", (consultation_id,))
            response, page = await a.post(f"/consultations/{consultation_id}/move",
                                          {"date": "2031-01-01", "time": "10:00"}, csrf_from="/")
            assert response.status == 409 and 'data-error="error.appointment-closed"' in page
            change(db, "UPDATE consultation SET state = 'in_call' WHERE id = ?", (consultation_id,))
            response, page = await a.post(f"/consultations/{consultation_id}/cancel", {}, csrf_from="/")
            assert response.status == 409 and 'data-error="error.appointment-started"' in page
            assert db.rows("SELECT cancelled_at, sequence FROM consultation") == [(None, 0)]
            assert len(inbox.messages) == 1
            # the edit form sets the language; a form without the field keeps it
            edit = f"/records/{patient_id}/edit"
            fields = {"name": "Jeanne Martin", "email": "jeanne@example.org", "date_of_birth": "1970-05-17"}
            response, _ = await a.post(edit, fields | {"language": "en"}, csrf_from=edit)
            assert response.status == 303 and db.rows("SELECT language FROM patient") == [("en",)]
            response, _ = await a.post(edit, fields, csrf_from=edit)
            assert response.status == 303 and db.rows("SELECT language FROM patient") == [("en",)]
            _, page = await a.get(edit)
            assert '<option value="en" selected>' in page
        finally:
            await a.close()


async def test_the_reminder_survives_a_restart_and_goes_out_once(tmp_path: Path, database: TestDatabase) -> None:
    async with practice_server(tmp_path, database) as (server, inbox, db):
        a = await alice(server)
        try:
            patient_id = await new_patient(a, "fr")
            day = (datetime.datetime.now(TZ) + datetime.timedelta(days=3)).date()
            response, _ = await a.post(f"/records/{patient_id}/consultations",
                                       {"date": day.isoformat(), "time": "09:00"}, csrf_from=f"/records/{patient_id}")
            assert response.status == 303
            await inbox.wait(1)
        finally:
            await a.close()
    # a new server on the same database: the reminder is still there; its time comes
    async with practice_server(tmp_path, database) as (server, inbox, db):
        change(db, "UPDATE mail_message SET next_attempt_at = ? WHERE kind = 'reminder'",
                (timestamps.to_text(timestamps.utc_now() - datetime.timedelta(seconds=1)),))
        server.app[MAILER].wake()
        (reminder,) = await inbox.wait(1)
        text, rich, calendar, method = parts(reminder)
        assert reminder["Subject"].startswith("Rappel") and "Dr Alice Durand" in text and PRACTICE in rich
        assert method == "REQUEST" and event_of(calendar).one("SEQUENCE") == "0"
        no_health_detail(text, rich)
        assert db.rows("SELECT state, body, calendar FROM mail_message WHERE kind = 'reminder'") == [("sent", "", None)]
        assert await server.app[MAILER].send_due() == 0  # claimed and sent once
        assert len(inbox.messages) == 1

