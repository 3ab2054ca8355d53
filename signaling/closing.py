"""The closing page (/c/{token}/closing): import documents, remove them, close the act.

Only the practitioner's invitation of the consultation reaches it; a patient
link gets the same 404 as an unknown address.  Uploads stream to the document
store (no whole file in memory); closing queues the patient's email and never
waits for the mail server.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import urllib.parse
import zoneinfo
from collections.abc import AsyncIterator

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from clinic import InvalidTransition, InvitationExpired, InvitationNotFound, InvitationRevoked, NotFound, Role
from clinic.errors import DocumentTooLarge, DocumentTypeRefused
from clinic.models import Consultation, ConsultationState, Invitation

from . import keys as app_keys
from .auth import csrf_token, current_session
from .pages import error_page
from .practice_pages import closing_page

logger = logging.getLogger(__name__)

CHUNK = 64 * 1024
NAME_HEADER = "X-File-Name"


def _problem(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _practitioner_invitation(request: web.Request) -> tuple[Invitation, Consultation] | web.Response:
    clinic = request.app[app_keys.CLINIC]
    try:
        invitation = await clinic.resolve_invitation(request.match_info["token"])
    except InvitationNotFound:
        return error_page("invitation-unknown")
    except (InvitationExpired, InvitationRevoked):
        return error_page("invitation-gone")
    if invitation.role is not Role.PRACTITIONER:
        return error_page("not-found")  # no hint that it exists
    return invitation, await clinic.get_consultation(invitation.consultation_id)


async def closing(request: web.Request) -> web.Response:
    """Where the practitioner lands after hanging up."""
    found = await _practitioner_invitation(request)
    if isinstance(found, web.Response):
        return found
    _, consultation = found
    documents = await request.app[app_keys.CLINIC].list_documents(consultation_id=consultation.id)
    shared = set(await request.app[app_keys.CLINIC].practice.patient_document_ids(consultation.id))
    return closing_page(await csrf_token(request), request.match_info["token"], consultation, documents, shared,
                        logged_in=await current_session(request) is not None)


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(CHUNK):
        yield chunk


async def upload(request: web.Request) -> web.Response:
    """One file, the raw request body; its name in the X-File-Name header (percent-encoded)."""
    found = await _practitioner_invitation(request)
    if isinstance(found, web.Response):
        return _problem(found.status, "not-found", "no such consultation")
    _, consultation = found
    if consultation.state is ConsultationState.CLOSED:
        return _problem(409, "closed", "the act is closed: no more documents can be added")
    raw_name = urllib.parse.unquote(request.headers.get(NAME_HEADER, ""))
    config = request.app[app_keys.CONFIG]
    max_bytes = config.documents.max_upload_bytes
    too_large = f"a document may not exceed {max_bytes / 1024 / 1024:.0f} MiB"
    if request.content_length is not None and request.content_length > max_bytes:
        return _problem(413, "too-large", too_large)
    clinic = request.app[app_keys.CLINIC]
    try:
        document = await clinic.store_document(consultation.id, "closing", raw_name or "document", "practitioner",
                                               _body(request), max_bytes=max_bytes,
                                               allowed_types=config.documents.allowed_types)
    except DocumentTooLarge:
        return _problem(413, "too-large", too_large)
    except DocumentTypeRefused as exc:
        return _problem(415, "type-refused", str(exc))
    except (ConnectionError, asyncio.IncompleteReadError, HttpProcessingError, ClientPayloadError) as exc:
        # the store removed what it had written
        logger.info("Consultation(%s) import interrupted (%s): nothing kept", consultation.id, type(exc).__name__)
        return _problem(400, "interrupted", "the upload was interrupted")
    await clinic.practice.audit("practitioner", consultation.practitioner_id, "document.import",
                                patient_id=consultation.patient_id, consultation_id=consultation.id,
                                document_id=document.id)
    logger.info("Consultation(%s) document %s imported (%d bytes)", consultation.id, document.id, document.size)
    return web.json_response({"id": document.id, "name": document.name, "size": document.size,
                              "media_type": document.media_type, "source": document.source}, status=201)


async def remove(request: web.Request) -> web.Response:
    """Remove a document imported on this page, before the act is closed."""
    found = await _practitioner_invitation(request)
    if isinstance(found, web.Response):
        return _problem(found.status, "not-found", "no such consultation")
    _, consultation = found
    clinic = request.app[app_keys.CLINIC]
    try:
        document = await clinic.get_document(request.match_info["document_id"])
    except NotFound:
        return _problem(404, "not-found", "no such document")
    if document.consultation_id != consultation.id or document.source != "closing":
        return _problem(404, "not-found", "no such document")
    if consultation.state is ConsultationState.CLOSED:
        return _problem(409, "closed", "the act is closed: its documents stay in the record")
    await clinic.remove_document(document.id)
    await clinic.practice.audit("practitioner", consultation.practitioner_id, "document.remove",
                                patient_id=consultation.patient_id, consultation_id=consultation.id,
                                document_id=document.id)
    return web.json_response({"removed": document.id})


async def close_act(request: web.Request) -> web.Response:
    """Clôturer l'acte: closed state, audit, and the patient's email when documents were shared."""
    found = await _practitioner_invitation(request)
    if isinstance(found, web.Response):
        return _problem(found.status, "not-found", "no such consultation")
    _, consultation = found
    app = request.app
    config = app[app_keys.CONFIG]
    share = await _share_choice(request)
    if isinstance(share, web.Response):
        return share
    try:
        done = await app[app_keys.CLINIC].practice.close_act(
            consultation.id, consultation.practitioner_id, base_url=config.http.public_url,
            link_lifetime=datetime.timedelta(days=config.patient_access.lifetime_days),
            tz=zoneinfo.ZoneInfo(config.practice.timezone), share=share)
    except ValueError:
        return _problem(400, "bad-share", "a document to share is not one of this consultation's")
    except InvalidTransition:
        state = (await app[app_keys.CLINIC].get_consultation(consultation.id)).state
        if state is ConsultationState.CLOSED:
            return _problem(409, "closed", "the act is already closed")
        return _problem(409, "not-ended", "the consultation has not ended: the act cannot be closed yet")
    if done.mail_id is not None:
        app[app_keys.MAILER].wake()
    return web.json_response({"closed": True, "documents": done.documents, "mail_queued": done.mail_id is not None})


#: Most documents one closing may name (far above what a consultation holds).
MAX_SHARED = 1000


async def _share_choice(request: web.Request) -> list[str] | None | web.Response:
    """The ids ticked `doc-share` (JSON body `{"share": [...]}`), None without a body (default by source)."""
    if not request.body_exists:
        return None
    try:
        body = await request.json()
    except ValueError:
        return _problem(400, "bad-share", "the body must be JSON: {\"share\": [document ids]}")
    share = body.get("share") if isinstance(body, dict) else None
    if not isinstance(share, list) or len(share) > MAX_SHARED or not all(isinstance(i, str) for i in share):
        return _problem(400, "bad-share", "'share' must be a list of document ids")
    return share


def setup_closing_routes(app: web.Application) -> None:
    app.router.add_get("/c/{token}/closing", closing)
    app.router.add_post("/c/{token}/closing/documents", upload)
    app.router.add_delete("/c/{token}/closing/documents/{document_id}", remove)
    app.router.add_post("/c/{token}/closing/close", close_act)
