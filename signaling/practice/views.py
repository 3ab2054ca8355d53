"""The practitioner's pages: login, day list, patients and records, care team, scheduling."""

from __future__ import annotations

import datetime
import logging
import math

from aiohttp import web

from clinic import NotFound
from clinic.appointments import Letterhead
from clinic.errors import AppointmentUnchangeable, TooManyAttempts

from .. import keys as app_keys
from ..downloads import FILE_HEADERS, content_disposition, serve_document
from ..error_pages import error_page
from ..stored_files import temporary_file_response
from . import html as pages
from .arrivals import day_events, day_of, live_status, rows_elsewhere, statuses_of_day, tz_of
from .auth import (
    SESSION_COOKIE,
    clear_session_cookie,
    client_address,
    csrf_token,
    current_session,
    require_session,
    see_other,
    set_session_cookie,
)
from .login_limits import login_policy
from .texts import as_module

logger = logging.getLogger(__name__)

MAX_FIELD = 1000


async def form(request: web.Request) -> dict[str, str]:
    """The urlencoded form's text fields (bounded)."""
    data = await request.post()
    return {k: v[:MAX_FIELD] for k, v in data.items() if isinstance(v, str)}


def letterhead(request: web.Request) -> Letterhead:
    """What the practice's mails need from the configuration."""
    config = request.config_dict[app_keys.CONFIG]
    return Letterhead(practice_name=config.practice.name, sender=config.mail.sender,
                      base_url=config.http.public_url, tz=tz_of(request),
                      reminder_before=config.mail.reminder_delay, contact=config.practice.contact)


def safe_next(value: str | None) -> str:
    """A local path to go to after login (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


# login

async def login_form(request: web.Request) -> web.Response:
    if await current_session(request) is not None:
        raise web.HTTPSeeOther(safe_next(request.query.get("next")))
    return pages.login_page(await csrf_token(request), next_path=safe_next(request.query.get("next")))


async def login(request: web.Request) -> web.StreamResponse:
    config = request.config_dict[app_keys.CONFIG]
    data = await form(request)
    email, password = data.get("email", "").strip(), data.get("password", "")
    next_path = safe_next(data.get("next"))
    policy = login_policy(config.accounts)
    lifetime = datetime.timedelta(hours=config.accounts.session_hours)
    try:
        done = None
        if email and password:
            done = await request.config_dict[app_keys.CLINIC].practice.login(
                email, password, address=client_address(request), policy=policy, lifetime=lifetime,
                previous_token=request.cookies.get(SESSION_COOKIE))
    except TooManyAttempts as exc:
        refused = pages.login_page(await csrf_token(request), email=email, next_path=next_path, status=429,
                                   error="login.slowed" if exc.scope == "account" else "login.too-many")
        refused.headers["Retry-After"] = str(math.ceil(exc.retry_after or 60))
        return refused
    if done is None:
        return pages.login_page(await csrf_token(request), error="login.failed", email=email,
                                next_path=next_path, status=401)
    response = see_other(next_path)
    set_session_cookie(request, response, done.token, int(lifetime.total_seconds()))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await request.config_dict[app_keys.CLINIC].practice.logout(token)
    response = see_other("/login")
    clear_session_cookie(response)
    return response


# the day list

async def day_list(request: web.Request) -> web.Response:
    session = await require_session(request)
    day, start, end = day_of(request)
    found = await request.config_dict[app_keys.CLINIC].practice.day(session.practitioner.id, start, end)
    elsewhere = await rows_elsewhere(request, found)
    rows = [(c, p, *live_status(request, c, elsewhere)) for c, p in found]
    return pages.day_page(await csrf_token(request), day, rows, tz_of(request))


async def day_status(request: web.Request) -> web.Response:
    """The live status of each of the day's consultations, for the page to refresh itself."""
    session = await current_session(request)
    if session is None:
        return web.json_response({"error": "login"}, status=401)
    data = await statuses_of_day(request, session.practitioner.id)
    return web.json_response(data, headers={"Cache-Control": "no-store"})


def _invitation_lifetime(request: web.Request) -> datetime.timedelta:
    return datetime.timedelta(hours=request.config_dict[app_keys.CONFIG].invitations.lifetime_hours)


async def join(request: web.Request) -> web.StreamResponse:
    """Rejoindre / Clôturer / GET …/call: a join pass for one's own consultation, then there.

    The pass (clinic.join_passes) is bound to this login session and revokes nothing:
    the invitation links already handed out keep working.
    """
    session = await require_session(request)
    try:
        token = await request.config_dict[app_keys.CLINIC].practice.join_pass(
            request.cookies.get(SESSION_COOKIE, ""), session.practitioner.id, request.match_info["consultation_id"],
            _invitation_lifetime(request))
    except NotFound:
        return error_page("not-found")
    suffix = "/closing" if request.path.endswith("/closing") else ""
    raise web.HTTPSeeOther(f"/c/{token}{suffix}")


# patients and records

def _patient_fields(data: dict[str, str]) -> tuple[str, str, datetime.date | None]:
    try:
        birth: datetime.date | None = datetime.date.fromisoformat(data.get("date_of_birth", ""))
    except ValueError:
        birth = None
    return data.get("name", ""), data.get("email", ""), birth


def _field_error(exc: ValueError) -> str:
    text = str(exc)
    if text.startswith("language"):
        return "error.language"
    return "error.name" if text.startswith("name") else "error.email" if "email" in text else "error.birth"


async def patients(request: web.Request) -> web.Response:
    session = await require_session(request)
    found = await request.config_dict[app_keys.CLINIC].practice.patients(session.practitioner.id)
    return pages.patients_page(await csrf_token(request), found)


async def patient_new_form(request: web.Request) -> web.Response:
    await require_session(request)
    return pages.patient_form_page(await csrf_token(request), action="/patients/new", title_key="patient.new-title")


async def patient_new(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    data = await form(request)
    name, email, birth = _patient_fields(data)
    language = data.get("language", "fr")
    try:
        if birth is None:
            raise ValueError("date of birth is not a date")
        patient = await request.config_dict[app_keys.CLINIC].practice.create_patient(
            session.practitioner.id, name, email, birth, language)
    except ValueError as exc:
        return pages.patient_form_page(await csrf_token(request), action="/patients/new", title_key="patient.new-title",
                                       name=name, email=email, birth=birth.isoformat() if birth else "",
                                       language=language, error=_field_error(exc), status=400)
    raise web.HTTPSeeOther(f"/records/{patient.id}")


async def patient_edit_form(request: web.Request) -> web.Response:
    session = await require_session(request)
    patient_id = request.match_info["patient_id"]
    try:
        patient = await request.config_dict[app_keys.CLINIC].practice.patient(session.practitioner.id, patient_id)
    except NotFound:
        return error_page("not-found")
    return pages.patient_form_page(await csrf_token(request), action=f"/records/{patient.id}/edit",
                                   title_key="patient.edit-title", name=patient.name, email=patient.email,
                                   birth=patient.date_of_birth.isoformat(), language=patient.language)


async def patient_edit(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    patient_id = request.match_info["patient_id"]
    data = await form(request)
    name, email, birth = _patient_fields(data)
    language = data.get("language") or None  # a form without the field keeps the record's
    try:
        if birth is None:
            raise ValueError("date of birth is not a date")
        await request.config_dict[app_keys.CLINIC].practice.update_patient(session.practitioner.id, patient_id, name,
                                                                           email, birth, language)
    except NotFound:
        return error_page("not-found")
    except ValueError as exc:
        return pages.patient_form_page(await csrf_token(request), action=f"/records/{patient_id}/edit",
                                       title_key="patient.edit-title", name=name, email=email, language=language or "fr",
                                       birth=birth.isoformat() if birth else "", error=_field_error(exc), status=400)
    raise web.HTTPSeeOther(f"/records/{patient_id}")


async def record(request: web.Request, *, error: str | None = None, note: str | None = None,
                 status: int = 200) -> web.Response:
    """The record page, or the same 404 as an unknown address without access."""
    session = await require_session(request)
    clinic = request.config_dict[app_keys.CLINIC]
    practice = clinic.practice
    me = session.practitioner.id
    patient_id = request.match_info["patient_id"]
    try:
        patient = await practice.patient(me, patient_id)
        consultations = await practice.consultations(me, patient_id)
        team = await practice.team(me, patient_id)
        links = await practice.links(me, patient_id)
        mails = await practice.mail_of_patient(me, patient_id)
        events = await practice.audit_of_patient(me, patient_id)
    except NotFound:
        return error_page("not-found")
    documents = await clinic.list_documents(patient_id=patient_id)
    consents = await clinic.consents_of_patient(patient_id)
    if request.method == "GET":
        await practice.audit("practitioner", me, "record.view", patient_id=patient_id)
    names = {m.practitioner.id: m.practitioner.display_name for m in team}
    names[patient.id] = patient.name
    return pages.record_page(await csrf_token(request), tz_of(request), patient, consultations=consultations,
                             documents=documents, team=team, links=links, mails=mails, events=events, names=names,
                             consents=consents, error=error, note=note, status=status)


async def record_get(request: web.Request) -> web.Response:
    changed = {"cancelled": "appointment.cancelled", "moved": "appointment.moved"}.get(request.query.get("changed", ""))
    return await record(request, note="record.scheduled" if request.query.get("scheduled") else changed)


async def schedule(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    patient_id = request.match_info["patient_id"]
    data = await form(request)
    tz = tz_of(request)
    try:
        when = datetime.datetime.combine(datetime.date.fromisoformat(data.get("date", "")),
                                         datetime.time.fromisoformat(data.get("time", "")), tz)
    except ValueError:
        return await record(request, error="error.when", status=400)
    app = request.app
    try:
        await app[app_keys.CLINIC].practice.schedule(session.practitioner.id, patient_id, when,
                                                     base_url=app[app_keys.CONFIG].http.public_url, tz=tz,
                                                     letter=letterhead(request))
    except NotFound:
        return error_page("not-found")
    except ValueError:  # absurdly far ahead
        return await record(request, error="error.when", status=400)
    app[app_keys.MAILER].wake()
    raise web.HTTPSeeOther(f"/records/{patient_id}?scheduled=1")


async def cancel_appointment(request: web.Request) -> web.StreamResponse:
    """Cancel one's own appointment: links revoked, the patient mailed; back to the page it came from."""
    session = await require_session(request)
    back = safe_next((await form(request)).get("next"))
    try:
        await request.config_dict[app_keys.CLINIC].practice.cancel(
            session.practitioner.id, request.match_info["consultation_id"], letterhead(request))
    except NotFound:
        return error_page("not-found")
    except AppointmentUnchangeable as exc:
        return pages.appointment_error(await csrf_token(request), f"error.appointment-{exc.reason}", back, 409)
    request.config_dict[app_keys.MAILER].wake()
    raise web.HTTPSeeOther(_changed(back, "cancelled"))


def _changed(back: str, how: str) -> str:
    """Where to go after a cancel or a move: the page it came from, which may say so."""
    return f"{back}{'&' if '?' in back else '?'}changed={how}"


async def move_appointment(request: web.Request) -> web.StreamResponse:
    """Move one's own appointment to a future time: new links, the patient mailed."""
    session = await require_session(request)
    data = await form(request)
    back = safe_next(data.get("next"))
    csrf = await csrf_token(request)
    try:
        when = datetime.datetime.combine(datetime.date.fromisoformat(data.get("date", "")),
                                         datetime.time.fromisoformat(data.get("time", "")), tz_of(request))
    except ValueError:
        return pages.appointment_error(csrf, "error.when", back, 400)
    try:
        await request.config_dict[app_keys.CLINIC].practice.move(
            session.practitioner.id, request.match_info["consultation_id"], when, letterhead(request))
    except NotFound:
        return error_page("not-found")
    except AppointmentUnchangeable as exc:
        return pages.appointment_error(csrf, f"error.appointment-{exc.reason}", back, 409)
    except ValueError as exc:  # in the past, or absurdly far ahead
        return pages.appointment_error(csrf, "error.when-past" if "past" in str(exc) else "error.when", back, 400)
    request.config_dict[app_keys.MAILER].wake()
    raise web.HTTPSeeOther(_changed(back, "moved"))


async def grant(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    patient_id = request.match_info["patient_id"]
    data = await form(request)
    practice = request.config_dict[app_keys.CLINIC].practice
    try:
        await practice.patient(session.practitioner.id, patient_id)
    except NotFound:
        return error_page("not-found")
    try:
        await practice.grant(session.practitioner.id, patient_id, data.get("email", "") or "-")
    except (NotFound, ValueError):
        return await record(request, error="error.colleague", status=400)
    raise web.HTTPSeeOther(f"/records/{patient_id}")


async def revoke(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    patient_id = request.match_info["patient_id"]
    try:
        await request.config_dict[app_keys.CLINIC].practice.revoke(session.practitioner.id, patient_id,
                                                           request.match_info["practitioner_id"])
    except NotFound:
        return error_page("not-found")
    except ValueError:
        return await record(request, error="error.last-member", status=409)
    # who removes themselves no longer sees the record
    raise web.HTTPSeeOther(f"/records/{patient_id}" if request.match_info["practitioner_id"] != session.practitioner.id
                           else "/patients")


async def revoke_link(request: web.Request) -> web.StreamResponse:
    session = await require_session(request)
    patient_id = request.match_info["patient_id"]
    try:
        await request.config_dict[app_keys.CLINIC].practice.revoke_link(session.practitioner.id, patient_id,
                                                                request.match_info["link_id"])
    except NotFound:
        return error_page("not-found")
    raise web.HTTPSeeOther(f"/records/{patient_id}")


async def record_document(request: web.Request) -> web.StreamResponse:
    """A document of a record, for a practitioner with access; 404 for anyone else."""
    session = await require_session(request)
    clinic = request.config_dict[app_keys.CLINIC]
    patient_id, document_id = request.match_info["patient_id"], request.match_info["document_id"]
    me = session.practitioner.id
    try:
        await clinic.practice.patient(me, patient_id)
        document = await clinic.get_document(document_id)
    except NotFound:
        return error_page("not-found")
    if document.patient_id != patient_id or not await clinic.practitioner_can_read_document(me, document_id):
        return error_page("not-found")
    download = request.query.get("download") == "1"
    await clinic.practice.audit("practitioner", me, "document.download" if download else "document.view",
                                patient_id=patient_id, consultation_id=document.consultation_id,
                                document_id=document_id)
    return await serve_document(request, document, download=download)


async def export_record(request: web.Request) -> web.StreamResponse:
    """The whole record as one ZIP (documents, consultations, consents, audit extract, index); 404 without access."""
    session = await require_session(request)
    clinic = request.config_dict[app_keys.CLINIC]
    patient_id = request.match_info["patient_id"]
    try:
        path = await clinic.export_record(session.practitioner.id, patient_id,
                                          request.config_dict[app_keys.CONFIG].data_path / "exports")
    except NotFound:
        return error_page("not-found")
    day = datetime.datetime.now(tz_of(request)).date().isoformat()
    return await temporary_file_response(request, path, {
        **FILE_HEADERS, "Content-Type": "application/zip",
        "Content-Disposition": content_disposition("attachment", f"dossier-{day}.zip"),
    })


# for the browser and the operator

async def strings(request: web.Request) -> web.Response:
    return web.Response(text=as_module(), content_type="text/javascript", charset="utf-8",
                        headers={"Cache-Control": "no-cache"})


def setup_practice_routes(app: web.Application) -> None:
    """The practitioner's pages (login required but for the login page)."""
    add = app.router
    add.add_get("/login", login_form)
    add.add_post("/login", login)
    add.add_post("/logout", logout)
    add.add_get("/", day_list)
    add.add_get("/day/status", day_status)
    add.add_get("/day/events", day_events)
    add.add_post("/consultations/{consultation_id}/join", join)
    add.add_get("/consultations/{consultation_id}/call", join)
    add.add_post("/consultations/{consultation_id}/closing", join)
    add.add_post("/consultations/{consultation_id}/cancel", cancel_appointment)
    add.add_post("/consultations/{consultation_id}/move", move_appointment)
    add.add_get("/patients", patients)
    add.add_get("/patients/new", patient_new_form)
    add.add_post("/patients/new", patient_new)
    add.add_get("/records/{patient_id}", record_get)
    add.add_get("/records/{patient_id}/edit", patient_edit_form)
    add.add_post("/records/{patient_id}/edit", patient_edit)
    add.add_post("/records/{patient_id}/consultations", schedule)
    add.add_post("/records/{patient_id}/access", grant)
    add.add_post("/records/{patient_id}/access/{practitioner_id}/revoke", revoke)
    add.add_post("/records/{patient_id}/links/{link_id}/revoke", revoke_link)
    add.add_get("/records/{patient_id}/documents/{document_id}", record_document)
    add.add_get("/records/{patient_id}/export", export_record)
    add.add_get("/practice/strings.js", strings)
