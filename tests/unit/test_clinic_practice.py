"""The practice's storage rules on a real SQLite file: sessions, access, closing, mail queue."""

from __future__ import annotations

import contextlib
import datetime
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from helpers.databases import TestDatabase

from clinic import Clinic, ConsultationState, InvalidTransition, NotFound, Stage, timestamps
from clinic.accounts import LoginPolicy, RateLimit
from clinic.errors import TooManyAttempts

DAY = datetime.timedelta(days=1)
_THREE = RateLimit(3, datetime.timedelta(minutes=15))
LIMIT = LoginPolicy(pair=_THREE, address=_THREE, account_ceiling=3, slowdown=datetime.timedelta(minutes=1),
                    known_for=datetime.timedelta(days=90))
UTC = datetime.UTC


@pytest.fixture
async def clinic(database: TestDatabase) -> AsyncIterator[Clinic]:
    c = await database.open(DAY)
    yield c
    await c.close()


async def practice(clinic: Clinic) -> tuple[Any, str, str, str]:
    a = await clinic.add_practitioner("a@example.org", "password a", "Dr A")
    b = await clinic.add_practitioner("b@example.org", "password b", "Dr B")
    patient = await clinic.practice.create_patient(a.id, "Jeanne", "j@example.org", datetime.date(1970, 5, 17))
    return clinic.practice, a.id, b.id, patient.id


async def test_sessions_expire_and_logout_ends_them(clinic: Clinic) -> None:
    p, a, _, _ = await practice(clinic)
    login = await p.login("A@example.org ", "password a", address="x", policy=LIMIT, lifetime=DAY, previous_token=None)
    assert login is not None and (await p.session(login.token)).practitioner.id == a  # type: ignore[union-attr]
    short = await p.login("a@example.org", "password a", address="x", policy=LIMIT,
                          lifetime=datetime.timedelta(microseconds=1), previous_token=None)
    assert short is not None and await p.session(short.token) is None  # already expired
    await p.logout(login.token)
    assert await p.session(login.token) is None
    for bad in ("", "x" * 500, "not/valid", login.token + "x"):
        assert await p.session(bad) is None


async def test_past_the_account_ceiling_a_new_address_is_slowed_down(clinic: Clinic) -> None:
    p, _, _, _ = await practice(clinic)
    for i in range(3):
        assert await p.login("a@example.org", "wrong", address=f"10.0.0.{i}", policy=LIMIT, lifetime=DAY,
                             previous_token=None) is None
    with pytest.raises(TooManyAttempts):
        await p.login("a@example.org", "password a", address="10.0.0.9", policy=LIMIT, lifetime=DAY, previous_token=None)
    # another account from a fresh address is unaffected
    assert await p.login("b@example.org", "password b", address="10.0.0.10", policy=LIMIT, lifetime=DAY,
                         previous_token=None) is not None


async def test_no_access_looks_like_no_record(clinic: Clinic) -> None:
    p, a, b, patient = await practice(clinic)
    for call in (p.patient(b, patient), p.consultations(b, patient), p.team(b, patient), p.links(b, patient),
                 p.mail_of_patient(b, patient), p.audit_of_patient(b, patient), p.grant(b, patient, "b@example.org"),
                 p.update_patient(b, patient, "X", "x@example.org", datetime.date(1990, 1, 1))):
        with pytest.raises(NotFound):
            await call
    await p.grant(a, patient, "b@example.org")
    assert {m.practitioner.id for m in await p.team(b, patient)} == {a, b}
    await p.revoke(b, patient, a)
    with pytest.raises(ValueError, match="last practitioner"):
        await p.revoke(b, patient, b)


async def test_closing_rules(clinic: Clinic) -> None:
    p, a, b, patient = await practice(clinic)
    consultation, tokens, mail_id = await p.schedule(a, patient, datetime.datetime(2030, 1, 1, 9, tzinfo=UTC),
                                                     base_url="https://x.example", tz=UTC)
    assert (await p.mail_get(mail_id)).state == "queued"
    args: dict[str, Any] = {"base_url": "https://x.example", "link_lifetime": DAY, "tz": UTC}
    with pytest.raises(InvalidTransition):
        await p.close_act(consultation.id, a, **args)  # the call has not ended
    await clinic.update_consultation(consultation.id, state=ConsultationState.ENDED,
                                     practitioner_stage=Stage.ENDED, patient_stage=Stage.ENDED)
    with pytest.raises(NotFound):
        await p.close_act(consultation.id, b, **args)  # not b's consultation
    with pytest.raises(NotFound):
        await p.join_pass("s" * 43, b, consultation.id, DAY)
    done = await p.close_act(consultation.id, a, **args)
    assert done.documents == 0 and done.mail_id is None
    assert (await clinic.get_consultation(consultation.id)).state is ConsultationState.CLOSED
    with pytest.raises(InvalidTransition):
        await p.close_act(consultation.id, a, **args)


async def test_mail_queue_states(clinic: Clinic, tmp_path: Path) -> None:
    p, a, _, patient = await practice(clinic)
    _, _, mail_id = await p.schedule(a, patient, datetime.datetime(2030, 1, 1, 9, tzinfo=UTC),
                                     base_url="https://x.example", tz=UTC)
    (due,) = await p.mail_due()
    assert due.id == mail_id and "https://x.example/c/" in due.body
    await p.mail_failed(mail_id, "ConnectionRefusedError", retry_in=datetime.timedelta(hours=1))
    assert await p.mail_due() == []  # not before its next attempt
    message = await p.mail_get(mail_id)
    assert (message.state, message.attempts, message.last_error) == ("queued", 1, "ConnectionRefusedError")
    await p.mail_failed(mail_id, "x" * 1000, retry_in=None)
    message = await p.mail_get(mail_id)
    assert message.state == "failed" and len(message.last_error or "") == 200
    assert "j@example.org" not in repr(message)  # the address stays out of logs


async def test_migration_applies_on_an_existing_database(tmp_path: Path) -> None:
    from clinic.database import connect
    from clinic.migrations import _PRACTICE, MIGRATIONS, migrate

    conn = connect(tmp_path / "old.sqlite3")
    mine = MIGRATIONS.index(_PRACTICE)  # wherever the integrator puts it
    migrate(conn, MIGRATIONS[:mine])
    assert migrate(conn, MIGRATIONS[:mine + 1]) == 1
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger')")}
    assert {"practitioner_session", "attempt", "patient_link", "mail_message", "audit_event",
            "audit_event_no_update", "audit_event_no_delete"} <= names
    conn.close()


async def test_old_attempts_are_forgotten_but_known_addresses_are_kept(clinic: Clinic, database: TestDatabase) -> None:
    p, _, _, _ = await practice(clinic)
    old = "2020-01-01T00:00:00.000000+00:00"
    insert = ("INSERT INTO attempt (scope, key, at) VALUES (?, ?, ?), (?, ?, ?), (?, ?, ?)", (
        "login-account", "x@example.org", old, "birth-date-address", "10.0.0.1", old,
        "login-success", "a@example.org 10.0.0.1", timestamps.to_text(datetime.datetime.now(UTC))))
    if database.kind == "sqlite":  # rows() does not commit on SQLite
        with contextlib.closing(sqlite3.connect(database.target)) as conn, conn:
            conn.execute(*insert)
    else:
        database.rows(*insert)
    assert len(database.rows("SELECT scope FROM attempt")) == 3
    assert await p.login("a@example.org", "wrong", address="x", policy=LIMIT, lifetime=DAY,
                         previous_token=None) is None
    scopes = sorted(row[0] for row in database.rows("SELECT scope FROM attempt"))
    assert scopes == ["login-account", "login-address", "login-pair", "login-success"]  # the fresh ones
