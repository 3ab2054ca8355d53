"""Issue 17 item 4: every route of the app's router × six identities, against a table.

The routes come from the running app's router (sub-applications included), so a new
route fails this test until its row is written below; a row whose route no longer
exists fails it too.  Each row says once what each identity gets:

- anonymous: no cookie, made-up tokens;
- patient A / patient B: their own invitation link (/c/...) and document link (/d/...),
  aimed at consultation A's objects (patient B's links belong to another patient);
- practitioner A's invitation: the practitioner's /c/ link of consultation A, no cookie;
- practitioner with access: logged in, in patient A's care team (made-up tokens);
- practitioner without access: logged in, not in the team (made-up tokens).

Every request carries the identity's CSRF token, so a refusal is the authorization's
doing.  HEAD routes are GET's twins (checked to exist only as such).
"""

from __future__ import annotations

import asyncio
import datetime
import io
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from clinic import ConsultationState, Stage
from helpers.practice import Browserless
from helpers.server import Running, running_server
from signaling.keys import MAILER

PASSWORD = "correct horse battery"
# in the order they are tried on each route: the one with access last, after the refusals
IDENTITIES = ("anonymous", "patient_a", "patient_b", "invitation_a", "without_access", "with_access")
ANON, PA, PB, INV, WITHOUT, WITH = IDENTITIES


def row(default: int, **special: int) -> dict[str, int]:
    """Expected status per identity: `default`, but for the identities named."""
    unknown = set(special) - set(IDENTITIES)
    assert not unknown, unknown
    return {identity: special.get(identity, default) for identity in IDENTITIES}


LOGIN = 303  # a page that needs a login sends anonymous users (and invitations: no cookie) to /login

# (method, route) -> expected status per identity; the one place the policy is written down
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    # public
    ("GET", "/healthz"): row(200),
    ("GET", "/favicon.ico"): row(301),
    ("GET", "/static/{path}"): row(200),
    ("GET", "/login"): row(200, with_access=303, without_access=303),
    ("POST", "/login"): row(401),  # wrong password for everyone
    ("POST", "/logout"): row(303),
    ("GET", "/practice/strings.js"): row(200),
    # (/stats, /metrics and /mail/status live on the operator's own listener, not this router)
    # the practitioner's pages: a login, then patient A's care team only (others: 404, no hint)
    ("GET", "/"): row(LOGIN, with_access=200, without_access=200),
    ("GET", "/day/status"): row(401, with_access=200, without_access=200),
    ("GET", "/day/events"): row(401, with_access=200, without_access=200),  # each one's own day only
    ("GET", "/account/password"): row(LOGIN, with_access=200, without_access=200),
    ("POST", "/account/password"): row(LOGIN, with_access=400, without_access=400),  # empty form
    ("GET", "/patients"): row(LOGIN, with_access=200, without_access=200),
    ("GET", "/patients/new"): row(LOGIN, with_access=200, without_access=200),
    ("POST", "/patients/new"): row(LOGIN, with_access=303, without_access=303),
    ("GET", "/records/{patient_id}"): row(LOGIN, with_access=200, without_access=404),
    ("GET", "/records/{patient_id}/edit"): row(LOGIN, with_access=200, without_access=404),
    ("POST", "/records/{patient_id}/edit"): row(LOGIN, with_access=303, without_access=404),
    ("POST", "/records/{patient_id}/consultations"): row(LOGIN, with_access=303, without_access=404),
    ("POST", "/records/{patient_id}/access"): row(LOGIN, with_access=303, without_access=404),
    ("POST", "/records/{patient_id}/access/{practitioner_id}/revoke"): row(LOGIN, with_access=303,
                                                                           without_access=404),
    ("POST", "/records/{patient_id}/links/{link_id}/revoke"): row(LOGIN, with_access=303, without_access=404),
    ("GET", "/records/{patient_id}/documents/{document_id}"): row(LOGIN, with_access=200, without_access=404),
    ("GET", "/records/{patient_id}/export"): row(LOGIN, with_access=200, without_access=404),
    ("POST", "/consultations/{consultation_id}/join"): row(LOGIN, with_access=303, without_access=404),
    ("GET", "/consultations/{consultation_id}/call"): row(LOGIN, with_access=303, without_access=404),
    ("POST", "/consultations/{consultation_id}/closing"): row(LOGIN, with_access=303, without_access=404),
    ("POST", "/consultations/{consultation_id}/move"): row(LOGIN, with_access=303, without_access=404),
    ("POST", "/consultations/{consultation_id}/cancel"): row(LOGIN, with_access=303, without_access=404),
    # the call: the invitation's token is the capability; a cookie opens nothing
    ("GET", "/c/{token}"): row(404, patient_a=200, patient_b=200, invitation_a=200),
    ("GET", "/c/{token}/ws"): row(404, patient_a=400, patient_b=400, invitation_a=400),  # not an upgrade
    ("POST", "/c/{token}/files"): row(404, patient_a=201, patient_b=201, invitation_a=201),
    # consultation A's document: its two participants only
    ("GET", "/c/{token}/files/{document_id}"): row(404, patient_a=200, invitation_a=200),
    ("POST", "/c/{token}/whiteboard/background"): row(404, patient_a=409, patient_b=409, invitation_a=409),
    ("GET", "/c/{token}/whiteboard/{background}/{page}.png"): row(404),  # no such background anywhere
    # the closing page: the practitioner's invitation only
    ("GET", "/c/{token}/closing"): row(404, invitation_a=200),
    ("POST", "/c/{token}/closing/documents"): row(404, invitation_a=201),
    ("DELETE", "/c/{token}/closing/documents/{document_id}"): row(404),  # a chat file is not the page's to remove
    ("POST", "/c/{token}/closing/close"): row(404, invitation_a=409),
    # the patient's document link: its own patient, after the date of birth
    ("GET", "/d/{token}"): row(404, patient_a=200, patient_b=200),
    ("POST", "/d/{token}"): row(404, patient_a=303, patient_b=303),  # each their own date of birth
    ("GET", "/d/{token}/documents/{document_id}"): row(404, patient_a=200),  # B, logged in on B's link: 404
}

# run first: they open what other rows look at (the patient's session on their link)
FIRST = ("/d/{token}",)
# event streams (Server-Sent Events): only the status is read
STREAMS = ("/day/events",)
# run last: they close what other rows look at (sessions, a link)
# (a move replaces consultation A's links, a cancel revokes them)
LAST = ("/consultations/{consultation_id}/move", "/consultations/{consultation_id}/cancel",
        "/records/{patient_id}/links/{link_id}/revoke", "/logout")


def app_routes(app: web.Application) -> set[tuple[str, str]]:
    """Every (method, route template) of the app and its sub-applications."""
    found: set[tuple[str, str]] = set()
    for resource in app.router.resources():
        info = resource.get_info()
        if "app" in info:
            found |= app_routes(info["app"])  # a sub-application's templates already hold its prefix
            continue
        found |= {(route.method, resource.canonical) for route in resource}
    return found


@dataclass
class World:
    """Consultation A (patient A, practitioner A), consultation B (patient B), practitioner C."""

    ids: dict[str, str]
    colleague_email: str  # a practitioner who may join patient A's team
    call_tokens: dict[str, str]  # identity -> its /c/ token
    doc_tokens: dict[str, str]  # identity -> its /d/ token
    clients: dict[str, Browserless]
    csrf: dict[str, str]
    births: dict[str, str]  # identity -> the date of birth of the patient whose links it holds


async def _patient_link(server: Running, patient_id: str, practitioner_id: str) -> tuple[str, str, str]:
    """A closed consultation of the patient with one shared document: (/d/ token, link id, document id)."""
    consultation, tokens = await server.clinic.schedule_consultation(
        patient_id, practitioner_id, datetime.datetime.now(datetime.UTC))
    link = server.base_url + "/c/" + next(t for role, t in tokens.items() if role.value == "patient")
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{link}/files?name=result.pdf", data=io.BytesIO(b"%PDF-1.4\n" + b"r" * 300)) as r:
            assert r.status == 201
            document_id = (await r.json())["document"]["id"]
    await server.clinic.update_consultation(consultation.id, state=ConsultationState.ENDED,
                                            practitioner_stage=Stage.ENDED, patient_stage=Stage.ENDED)
    before = set(server.config.outbox_path.glob("*.eml")) if server.config.outbox_path.exists() else set()
    closing = await server.clinic.practice.close_act(consultation.id, practitioner_id, base_url=server.base_url,
                                                     link_lifetime=datetime.timedelta(days=1), tz=datetime.UTC)
    assert closing.link_id is not None
    server.app[MAILER].wake()
    for _ in range(200):
        new = set(server.config.outbox_path.glob("*.eml")) - before if server.config.outbox_path.exists() else set()
        if new:
            token = re.search(r"/d/([A-Za-z0-9_-]+)", next(iter(new)).read_text())
            assert token
            return token.group(1), closing.link_id, document_id
        await asyncio.sleep(0.05)
    raise AssertionError("no email in the outbox")


async def _csrf(client: Browserless, page: str) -> str:
    return await client.csrf(page)


async def build_world(server: Running) -> World:
    demo = await server.demo()
    a = await server.clinic.get_consultation(demo["consultation_id"])
    practitioner_a = a.practitioner_id
    patient_a = await server.clinic.get_patient(a.patient_id)
    patient_b = await server.clinic.add_patient("Paul Martin", "paul@example.org", datetime.date(1981, 2, 3))
    await server.clinic.grant_access(practitioner_a, patient_b.id)
    c = await server.clinic.add_practitioner("c@example.org", PASSWORD, "Dr C")
    d = await server.clinic.add_practitioner("d@example.org", PASSWORD, "Dr D")  # in A's team, to revoke
    await server.clinic.grant_access(d.id, patient_a.id)
    await server.clinic.add_practitioner("e@example.org", PASSWORD, "Dr E")  # to invite into the team
    _, b_tokens = await server.clinic.schedule_consultation(patient_b.id, practitioner_a,
                                                            datetime.datetime.now(datetime.UTC))
    token_a_patient = demo["patient_link"].rsplit("/", 1)[1]
    token_a_practitioner = demo["practitioner_link"].rsplit("/", 1)[1]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{demo['patient_link']}/files?name=scan.pdf",
                             data=io.BytesIO(b"%PDF-1.4\n" + b"s" * 300)) as r:
            assert r.status == 201
            document_a = (await r.json())["document"]["id"]
    d_a, link_a, shared_a = await _patient_link(server, patient_a.id, practitioner_a)
    d_b, _, _ = await _patient_link(server, patient_b.id, practitioner_a)
    clients = {identity: Browserless(server.base_url) for identity in IDENTITIES}
    assert (await clients[WITH].login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
    assert (await clients[WITHOUT].login("c@example.org", PASSWORD)).status == 303
    csrf = {identity: await _csrf(client, "/patients/new" if identity in (WITH, WITHOUT) else "/login")
            for identity, client in clients.items()}
    made_up = secrets.token_urlsafe(32)
    return World(
        colleague_email="e@example.org",
        ids={"patient_id": patient_a.id, "consultation_id": a.id, "practitioner_id": d.id, "link_id": link_a,
             "call_document": document_a, "shared_document": shared_a, "background": "0" * 32, "page": "0",
             "path": "css/app.css"},
        call_tokens={**dict.fromkeys(IDENTITIES, made_up), PA: token_a_patient,
                     PB: next(t for role, t in b_tokens.items() if role.value == "patient"),
                     INV: token_a_practitioner},
        doc_tokens={**dict.fromkeys(IDENTITIES, made_up), PA: d_a, PB: d_b},
        clients=clients, csrf=csrf,
        births={PA: patient_a.date_of_birth.isoformat(), PB: patient_b.date_of_birth.isoformat()},
    )


# valid forms, so that a refusal is the authorization's and not the form's
_PATIENT = {"name": "Jeanne Martin", "email": "jeanne@example.org", "date_of_birth": "1970-05-17"}
FORMS = {
    "/patients/new": _PATIENT,
    "/records/{patient_id}/edit": _PATIENT,
    "/records/{patient_id}/consultations": {"date": (datetime.date.today() + datetime.timedelta(days=3)).isoformat(),
                                            "time": "10:30"},
    "/records/{patient_id}/access": {},
    "/consultations/{consultation_id}/move": {"date": (datetime.date.today() + datetime.timedelta(days=3)).isoformat(),
                                              "time": "11:00"},
}


def fill(route: str, identity: str, world: World) -> str:
    """The route's path for this identity, aimed at consultation A's objects."""
    on_call, on_link = route.startswith("/c/"), route.startswith("/d/")
    values = dict(world.ids)
    values["token"] = world.call_tokens[identity] if on_call else world.doc_tokens[identity]
    values["document_id"] = world.ids["shared_document"] if on_link else world.ids["call_document"]
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], route)


async def status_of(method: str, route: str, identity: str, world: World) -> int:
    client = world.clients[identity]
    data: Any = {"csrf": world.csrf[identity]}
    if route == "/login":
        # one account per identity: the limit per account and address would refuse the sixth
        data |= {"email": f"nobody-{identity.replace('_', '-')}@example.org", "password": "wrong"}
    elif route in FORMS:
        data |= FORMS[route] | ({"email": world.colleague_email} if route.endswith("/access") else {})
    elif route == "/d/{token}":
        data |= {"date_of_birth": world.births.get(identity, world.births[PA])}
    elif route.endswith(("/files", "/background", "/closing/documents")):
        data = io.BytesIO(b"%PDF-1.4\n" + b"m" * 300)
    async with client.session.request(method, client.base_url + fill(route, identity, world), data=data,
                                      headers={"X-CSRF-Token": world.csrf[identity]}, allow_redirects=False) as r:
        if route not in STREAMS:  # a stream never ends: its status is enough
            await r.read()
        return r.status


async def test_every_route_answers_every_identity_as_the_table_says(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        routes = app_routes(server.app)
        heads = {route for method, route in routes if method == "HEAD"}
        assert heads <= {route for method, route in routes if method == "GET"}  # HEAD only as GET's twin
        table = set(EXPECTED)
        checked = {(m, r) for m, r in routes if m != "HEAD"}
        assert checked - table == set(), f"routes missing from the table: {sorted(checked - table)}"
        assert table - checked == set(), f"rows for routes that no longer exist: {sorted(table - checked)}"
        world = await build_world(server)
        try:
            got: dict[tuple[str, str], dict[str, int]] = {}
            for method, route in sorted(table, key=lambda k: (k[1] not in FIRST, LAST.index(k[1]) if k[1] in LAST
                                                              else -1, k)):
                got[(method, route)] = {identity: await status_of(method, route, identity, world)
                                        for identity in IDENTITIES}
        finally:
            for client in world.clients.values():
                await client.close()
    wrong = {f"{m} {r}": {i: f"{got[(m, r)][i]} (expected {s})" for i, s in row_.items() if got[(m, r)][i] != s}
             for (m, r), row_ in EXPECTED.items() if got[(m, r)] != row_}
    assert wrong == {}
