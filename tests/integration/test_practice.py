"""The practice over real HTTP on loopback: login, CSRF, records and care teams, scheduling."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Any

import pytest
from helpers.practice import Browserless, body_of, link_in, smtp_server, sql
from helpers.server import Running, running_server

PASSWORD = "correct horse battery"


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with running_server(tmp_path / "data") as running:
        yield running


async def client(server: Running) -> Browserless:
    return Browserless(server.base_url)


async def logged_in(server: Running, email: str, password: str = PASSWORD) -> Browserless:
    c = Browserless(server.base_url)
    response = await c.login(email, password)
    assert response.status == 303, await response.text()
    return c


async def new_patient(c: Browserless, name: str = "Jeanne Martin", birth: str = "1970-05-17") -> str:
    response, _ = await c.post("/patients/new", {"name": name, "email": "jeanne@example.org",
                                                 "date_of_birth": birth}, csrf_from="/patients/new")
    assert response.status == 303
    found = re.fullmatch(r"/records/([0-9a-f]{32})", response.headers["Location"])
    assert found, response.headers["Location"]
    return found.group(1)


# --- accounts -------------------------------------------------------------------------

async def test_demo_credentials_log_in_and_cookie_flags(server: Running) -> None:
    demo = await server.demo()
    c = await client(server)
    try:
        response, page = await c.get("/")
        assert response.status == 303 and response.headers["Location"] == "/login"
        response = await c.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
        assert response.status == 303 and response.headers["Location"] == "/"
        cookie = response.cookies["tc_session"]
        assert cookie["httponly"] is True and cookie["samesite"] == "Lax" and cookie["path"] == "/"
        assert not cookie["secure"]  # plain HTTP and secure_cookies = false
        response, page = await c.get("/")
        assert response.status == 200 and 'data-testid="day-list"' in page
        # the demo consultation is on today's list, patient absent
        assert 'data-status="absent"' in page
        # logout needs the CSRF token too, and ends the session
        response, _ = await c.post("/logout", {}, csrf_from="/")
        assert response.status == 303
        response, _ = await c.get("/")
        assert response.status == 303
    finally:
        await c.close()


async def test_secure_cookie_when_configured(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"accounts.secure_cookies": True}) as server:
        demo = await server.demo()
        c = await client(server)
        try:
            # Secure cookies are not sent back over plain http: hand the CSRF cookie back by hand
            token = await c.csrf("/login")
            c.plant("tc_csrf", token)
            response, _ = await c.post("/login", {"email": demo["practitioner"]["email"],
                                                  "password": demo["practitioner"]["password"]}, csrf=token)
            assert response.status == 303
            assert response.cookies["tc_session"]["secure"] is True
            assert response.cookies["tc_session"]["httponly"] is True
        finally:
            await c.close()


async def test_session_id_changes_at_login_no_fixation(server: Running) -> None:
    demo = await server.demo()
    email, password = demo["practitioner"]["email"], demo["practitioner"]["password"]
    c = await client(server)
    try:
        # an attacker plants a session id before the victim logs in
        c.plant("tc_session", "planted-by-attacker-0123456789abcdef")
        await c.login(email, password)
        first = c.cookie("tc_session")
        assert first and first != "planted-by-attacker-0123456789abcdef"
        # logging in again (even with a valid session) issues a new id and kills the old one
        response, _ = await c.post("/login", {"email": email, "password": password}, csrf_from="/")
        assert response.status == 303
        second = c.cookie("tc_session")
        assert second and second != first
        old = Browserless(server.base_url)
        old.plant("tc_session", first)
        response, _ = await old.get("/")
        assert response.status == 303  # the old id no longer works
        await old.close()
        assert len(sql(server, "SELECT * FROM practitioner_session")) == 1
        # ids are stored hashed
        assert sql(server, "SELECT 1 FROM practitioner_session WHERE token_hash = ?", second) == []
    finally:
        await c.close()


async def test_csrf_token_required_on_every_state_change(server: Running) -> None:
    demo = await server.demo()
    c = await logged_in(server, demo["practitioner"]["email"], demo["practitioner"]["password"])
    other = Browserless(server.base_url)
    try:
        before = len(sql(server, "SELECT * FROM patient"))
        fields = {"name": "X", "email": "x@example.org", "date_of_birth": "1990-01-01"}
        response, page = await c.post("/patients/new", fields)  # no token
        assert response.status == 403 and "CSRF" in page
        response, page = await c.post("/patients/new", fields, csrf="forged-token-forged-token-forged")
        assert response.status == 403
        # a token of another (pre-login) browser is not this session's
        foreign = await other.csrf("/login")
        response, _ = await c.post("/patients/new", fields, csrf=foreign)
        assert response.status == 403
        assert len(sql(server, "SELECT * FROM patient")) == before  # nothing was created
        # scripts: refused with a JSON message
        async with c.session.post(server.base_url + "/logout", headers={"X-CSRF-Token": "nope"},
                                  allow_redirects=False) as r:
            assert r.status == 403 and (await r.json())["error"] == "csrf"
        # the login form itself is protected (login CSRF)
        response, _ = await other.post("/login", {"email": demo["practitioner"]["email"],
                                                  "password": demo["practitioner"]["password"]})
        assert response.status == 403
        response, _ = await c.post("/patients/new", fields, csrf_from="/patients/new")
        assert response.status == 303
    finally:
        await c.close()
        await other.close()


async def test_login_rate_limited_per_account_and_address(tmp_path: Path) -> None:
    overrides = {"accounts.login_max_failures": 3, "accounts.login_address_max_failures": 3}
    async with running_server(tmp_path / "data", **overrides) as server:
        demo = await server.demo()
        email, password = demo["practitioner"]["email"], demo["practitioner"]["password"]
        c = await client(server)
        try:
            for _ in range(3):
                response, page = await c.post("/login", {"email": email, "password": "wrong"}, csrf_from="/login")
                assert response.status == 401 and 'data-error="login.failed"' in page
            # now even the right password is refused for a while
            response, page = await c.post("/login", {"email": email, "password": password}, csrf_from="/login")
            assert response.status == 429 and 'data-error="login.too-many"' in page
            assert c.cookie("tc_session") is None
            # the address is limited too: another account from the same address is refused
            await server.clinic.add_practitioner("other@example.org", PASSWORD, "Dr Other")
            response, _ = await c.post("/login", {"email": "other@example.org", "password": PASSWORD},
                                       csrf_from="/login")
            assert response.status == 429
            # the failures are counted per account and address, per address and per account, in the database
            scopes = {row[0] for row in sql(server, "SELECT scope FROM attempt")}
            assert scopes == {"login-pair", "login-account", "login-address"}
        finally:
            await c.close()


async def test_bad_login_input_is_a_clear_refusal(server: Running) -> None:
    c = await client(server)
    try:
        for fields in ({"email": "", "password": ""}, {"email": "x" * 5000, "password": "y"},
                       {"email": "nobody@example.org", "password": "whatever"}):
            response, page = await c.post("/login", fields, csrf_from="/login")
            assert response.status == 401 and 'data-error="login.failed"' in page
        # next= never leads off-site
        response, page = await c.get("/login?next=//evil.example/")
        assert 'name="next" value="/"' in page
    finally:
        await c.close()


# --- records and care teams -----------------------------------------------------------

async def test_records_care_team_and_404_without_access(server: Running) -> None:
    for email, name in (("a@example.org", "Dr A"), ("b@example.org", "Dr B"), ("c@example.org", "Dr C")):
        await server.clinic.add_practitioner(email, PASSWORD, name)
    a, b, c = [await logged_in(server, m) for m in ("a@example.org", "b@example.org", "c@example.org")]
    try:
        patient_id = await new_patient(a)
        response, page = await a.get(f"/records/{patient_id}")
        assert response.status == 200 and "Jeanne Martin" in page
        # bad input: a future birth date, an empty name, a bad email
        for fields in ({"name": "J", "email": "j@example.org", "date_of_birth": "2999-01-01"},
                       {"name": "  ", "email": "j@example.org", "date_of_birth": "1990-01-01"},
                       {"name": "J", "email": "not-an-email", "date_of_birth": "1990-01-01"},
                       {"name": "J", "email": "j@example.org", "date_of_birth": "17/05/1970"}):
            response, page = await a.post(f"/records/{patient_id}/edit", fields, csrf_from=f"/records/{patient_id}/edit")
            assert response.status == 400 and 'data-testid="form-error"' in page
        response, _ = await a.post(f"/records/{patient_id}/edit", {"name": "Jeanne Martin-Durand",
                                   "email": "jeanne@example.org", "date_of_birth": "1970-05-17"},
                                   csrf_from=f"/records/{patient_id}/edit")
        assert response.status == 303
        # B and C see nothing yet: the same 404 page as an unknown record
        for other in (b, c):
            response, page = await other.get(f"/records/{patient_id}")
            assert response.status == 404 and 'data-testid="error-page"' in page
            response, _ = await other.get(f"/records/{patient_id}/edit")
            assert response.status == 404
        response, _ = await c.get("/records/" + "0" * 32)
        assert response.status == 404
        # C cannot grant itself access either
        response, _ = await c.post(f"/records/{patient_id}/access", {"email": "c@example.org"}, csrf_from="/patients")
        assert response.status == 404
        # A grants B; an unknown colleague is a clear error
        response, page = await a.post(f"/records/{patient_id}/access", {"email": "nobody@example.org"},
                                      csrf_from=f"/records/{patient_id}")
        assert response.status == 400 and 'data-error="error.colleague"' in page
        response, _ = await a.post(f"/records/{patient_id}/access", {"email": "B@example.org "},
                                   csrf_from=f"/records/{patient_id}")
        assert response.status == 303
        response, page = await b.get(f"/records/{patient_id}")
        assert response.status == 200 and "Jeanne Martin-Durand" in page and page.count('data-testid="team-member"') == 2
        _, listing = await b.get("/patients")
        assert "Jeanne Martin-Durand" in listing
        _, listing = await c.get("/patients")
        assert "Jeanne" not in listing
        # B revokes A; A is then out, and the last member cannot be removed
        a_id = (await server.clinic.find_practitioner("a@example.org")).id  # type: ignore[union-attr]
        b_id = (await server.clinic.find_practitioner("b@example.org")).id  # type: ignore[union-attr]
        response, _ = await b.post(f"/records/{patient_id}/access/{a_id}/revoke", {}, csrf_from=f"/records/{patient_id}")
        assert response.status == 303
        response, _ = await a.get(f"/records/{patient_id}")
        assert response.status == 404
        response, page = await b.post(f"/records/{patient_id}/access/{b_id}/revoke", {}, csrf_from=f"/records/{patient_id}")
        assert response.status == 409 and 'data-error="error.last-member"' in page
        # the audit log shows it all, with ids only
        actions = [row["action"] for row in sql(server, "SELECT action FROM audit_event WHERE patient_id = ? ORDER BY seq", patient_id)]
        for action in ("patient.create", "record.view", "patient.update", "access.grant", "access.revoke"):
            assert action in actions, actions
        _, page = await b.get(f"/records/{patient_id}")
        assert 'data-action="access.revoke"' in page
    finally:
        for x in (a, b, c):
            await x.close()


async def test_audit_log_is_append_only(server: Running) -> None:
    import sqlite3

    await server.clinic.practice.audit("operator", None, "record.view", patient_id="p1")
    with pytest.raises(ValueError, match="unknown audit action"):
        await server.clinic.practice.audit("operator", None, "free text with a patient name")
    assert sql(server, "SELECT COUNT(*) FROM audit_event")[0][0] >= 1
    for statement in ("UPDATE audit_event SET action = 'login'", "DELETE FROM audit_event"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            sql(server, statement)


async def test_schedule_sends_the_invitation_by_smtp_and_the_day_list_shows_it(tmp_path: Path) -> None:
    async with smtp_server() as (inbox, port):
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "none"}
        async with running_server(tmp_path / "data", **overrides) as server:
            await server.clinic.add_practitioner("a@example.org", PASSWORD, "Dr A")
            a = await logged_in(server, "a@example.org")
            try:
                patient_id = await new_patient(a)
                when = datetime.datetime.now(datetime.UTC).astimezone()
                day = when.astimezone(datetime.timezone(datetime.timedelta(hours=0)))
                response, page = await a.post(f"/records/{patient_id}/consultations", {"date": "2026-13-01", "time": "10:00"},
                                              csrf_from=f"/records/{patient_id}")
                assert response.status == 400 and 'data-error="error.when"' in page
                response, _ = await a.post(f"/records/{patient_id}/consultations",
                                           {"date": "2030-03-04", "time": "09:30"}, csrf_from=f"/records/{patient_id}")
                assert response.status == 303
                (message,) = await inbox.wait(1)
                assert message["To"] == "jeanne@example.org"
                body = body_of(message)
                assert "4 mars 2030 à 09:30" in body
                assert "Jeanne" not in body and "Dr A" in body  # the practitioner's name, not the patient's
                link = link_in(message, server.base_url + "/c/")
                response, page = await a.get(link.removeprefix(server.base_url))
                assert response.status == 200 and "Salle d'attente" in page
                # the day list of that day shows it, patient absent, with a join button
                response, page = await a.get("/?day=2030-03-04")
                assert 'data-status="absent"' in page and 'data-testid="join-consultation"' in page
                status_url = "/day/status?day=2030-03-04"
                async with a.session.get(server.base_url + status_url) as r:
                    data = await r.json()
                assert list(data.values()) == [{"status": "absent", "readiness": None}]
                _, page = await a.get(f"/records/{patient_id}")
                assert 'data-state="sent"' in page  # the invitation mail's state
                del day, when
            finally:
                await a.close()


async def test_behind_a_proxy_the_address_limit_uses_x_forwarded_for(tmp_path: Path) -> None:
    # the test's requests come from 127.0.0.1: the proxy's address
    overrides = {"accounts.login_max_failures": 2, "accounts.login_address_max_failures": 2,
                 "http.trusted_proxies": ["127.0.0.1/32"]}
    async with running_server(tmp_path / "data", **overrides) as server:
        await server.clinic.add_practitioner("a@example.org", PASSWORD, "Dr A")
        await server.clinic.add_practitioner("b@example.org", PASSWORD, "Dr B")
        c = await client(server)
        try:
            async def attempt(email: str, password: str, address: str) -> int:
                token = await c.csrf("/login")
                async with c.session.post(server.base_url + "/login", allow_redirects=False,
                                          data={"email": email, "password": password, "csrf": token},
                                          headers={"X-Forwarded-For": f"198.51.100.9, {address}"}) as r:
                    return r.status

            assert [await attempt("a@example.org", "wrong", "203.0.113.1") for _ in range(2)] == [401, 401]
            assert await attempt("b@example.org", PASSWORD + "x", "203.0.113.1") == 429  # that address is limited
            # another client behind the same proxy is not (the proxy's own address is shared)
            assert await attempt("b@example.org", PASSWORD, "203.0.113.2") == 303
        finally:
            await c.close()
