"""The patient's document access (/d/{token}): date of birth, then the documents.

The token of the emailed link is stored hashed; a right date of birth opens a
one-hour session whose token sits in an HttpOnly cookie scoped to the link's path.
"""

from __future__ import annotations

import datetime
import logging

from aiohttp import web

from clinic import NotFound
from clinic.errors import LinkGone, TooManyAttempts, WrongBirthDate
from clinic.patient_links import SESSION_LIFETIME, PatientLink

from .. import keys as app_keys
from ..downloads import serve_document
from ..error_pages import error_page
from .auth import client_address, csrf_token, secure_request, see_other
from .html import access_form_page, access_list_page
from .views import form

logger = logging.getLogger(__name__)

COOKIE = "tc_doc"


async def _session_link(request: web.Request) -> PatientLink | web.Response | None:
    """The link if this browser opened it with the right date of birth; None if not yet; a page if unusable."""
    practice = request.config_dict[app_keys.CLINIC].practice
    token = request.match_info["token"]
    try:
        await practice.usable_link(token)
    except NotFound:
        return error_page("not-found")
    except LinkGone:
        return error_page("link-gone")
    session = request.cookies.get(COOKIE)
    if not session:
        return None
    try:
        return await practice.link_session(token, session)
    except (NotFound, LinkGone):
        return None


async def access(request: web.Request) -> web.Response:
    found = await _session_link(request)
    if isinstance(found, web.Response):
        return found
    token = request.match_info["token"]
    if found is None:
        return access_form_page(await csrf_token(request), token)
    clinic = request.config_dict[app_keys.CLINIC]
    shared = set(await clinic.practice.patient_document_ids(found.consultation_id))
    documents = [d for d in await clinic.list_documents(consultation_id=found.consultation_id) if d.id in shared]
    return access_list_page(await csrf_token(request), token, documents)


async def check(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    data = await form(request)
    config = request.config_dict[app_keys.CONFIG].patient_access
    csrf = await csrf_token(request)
    try:
        birth = datetime.date.fromisoformat(data.get("date_of_birth", ""))
    except ValueError:
        return access_form_page(csrf, token, error="access.wrong", status=400)
    try:
        _, session = await request.config_dict[app_keys.CLINIC].practice.check_birth_date(
            token, birth, address=client_address(request), per_minute=config.attempts_per_minute,
            max_failures=config.max_failures)
    except NotFound:
        return error_page("not-found")
    except LinkGone:
        return error_page("link-gone")
    except TooManyAttempts:
        return access_form_page(csrf, token, error="access.too-many", status=429)
    except WrongBirthDate as exc:
        return access_form_page(csrf, token, error="access.wrong", remaining=exc.remaining, status=403)
    response = see_other(f"/d/{token}")
    response.set_cookie(COOKIE, session, path=f"/d/{token}", httponly=True, samesite="Strict",
                        secure=secure_request(request), max_age=int(SESSION_LIFETIME.total_seconds()))
    return response


async def document(request: web.Request) -> web.StreamResponse:
    found = await _session_link(request)
    if isinstance(found, web.Response):
        return found
    token = request.match_info["token"]
    if found is None:
        raise web.HTTPSeeOther(f"/d/{token}")
    clinic = request.config_dict[app_keys.CLINIC]
    try:
        doc = await clinic.get_document(request.match_info["document_id"])
    except NotFound:
        return error_page("not-found")
    if (doc.consultation_id != found.consultation_id
            or doc.id not in await clinic.practice.patient_document_ids(found.consultation_id)):
        return error_page("not-found")
    download = request.query.get("download") == "1"
    await clinic.practice.document_opened(found, doc.id, "document.download" if download else "document.view")
    return await serve_document(request, doc, download=download)


def setup_patient_access_routes(app: web.Application) -> None:
    app.router.add_get("/d/{token}", access)
    app.router.add_post("/d/{token}", check)
    app.router.add_get("/d/{token}/documents/{document_id}", document)
