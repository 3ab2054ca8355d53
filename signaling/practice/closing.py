"""The closing page (/c/{token}/closing): import documents, remove them, close the act.

Only the practitioner's invitation of the consultation reaches it; a patient
link gets the same 404 as an unknown address.  Uploads stream to the document
store (no whole file in memory); closing queues the patient's email and never
waits for the mail server.
"""

from __future__ import annotations

import datetime
import logging
import zoneinfo

from aiohttp import web

from clinic import InvalidTransition, NotFound, Role
from clinic.models import Consultation, ConsultationState

from .. import keys as app_keys
from ..error_pages import problem
from ..invitation_links import INVITATION, InvitationRoutes, LinkRule
from ..uploads import UPLOAD_ERRORS, read_upload, refusal, upload_quota
from .auth import csrf_token, current_session
from .html import closing_page

logger = logging.getLogger(__name__)


async def _consultation(request: web.Request) -> Consultation:
    return await request.config_dict[app_keys.CLINIC].get_consultation(request[INVITATION].consultation_id)


async def closing(request: web.Request) -> web.Response:
    """Where the practitioner lands after hanging up."""
    consultation = await _consultation(request)
    clinic = request.config_dict[app_keys.CLINIC]
    documents = await clinic.list_documents(consultation_id=consultation.id)
    shared = set(await clinic.practice.patient_document_ids(consultation.id))
    return closing_page(await csrf_token(request), request.match_info["token"], consultation, documents, shared,
                        logged_in=await current_session(request) is not None)


async def upload(request: web.Request) -> web.Response:
    """One file, the raw request body; its name in `?name=` (percent-encoded)."""
    consultation = await _consultation(request)
    if consultation.state is ConsultationState.CLOSED:
        return problem(409, "closed", "the act is closed: no more documents can be added")
    config = request.config_dict[app_keys.CONFIG]
    max_bytes = config.documents.max_upload_bytes
    clinic = request.config_dict[app_keys.CLINIC]
    try:
        file = read_upload(request, max_bytes)
        document = await clinic.store_document(consultation.id, "closing", file.name or "document", "practitioner",
                                               file.chunks, max_bytes=max_bytes,
                                               allowed_types=config.documents.allowed_types,
                                               quota=upload_quota(config.documents))
    except UPLOAD_ERRORS as exc:
        logger.info("Consultation(%s) import refused (%s): nothing kept", consultation.id, type(exc).__name__)
        return refusal(exc, max_bytes)
    await clinic.practice.audit("practitioner", consultation.practitioner_id, "document.import",
                                patient_id=consultation.patient_id, consultation_id=consultation.id,
                                document_id=document.id)
    logger.info("Consultation(%s) document %s imported (%d bytes)", consultation.id, document.id, document.size)
    return web.json_response({"id": document.id, "name": document.name, "size": document.size,
                              "media_type": document.media_type, "source": document.source}, status=201)


async def remove(request: web.Request) -> web.Response:
    """Remove a document imported on this page, before the act is closed."""
    consultation = await _consultation(request)
    clinic = request.config_dict[app_keys.CLINIC]
    try:
        document = await clinic.get_document(request.match_info["document_id"])
    except NotFound:
        return problem(404, "not-found", "no such document")
    if document.consultation_id != consultation.id or document.source != "closing":
        return problem(404, "not-found", "no such document")
    if consultation.state is ConsultationState.CLOSED:
        return problem(409, "closed", "the act is closed: its documents stay in the record")
    await clinic.remove_document(document.id)
    await clinic.practice.audit("practitioner", consultation.practitioner_id, "document.remove",
                                patient_id=consultation.patient_id, consultation_id=consultation.id,
                                document_id=document.id)
    return web.json_response({"removed": document.id})


async def close_act(request: web.Request) -> web.Response:
    """Clôturer l'acte: closed state, audit, and the patient's email when documents were shared."""
    consultation = await _consultation(request)
    app = request.config_dict
    config = app[app_keys.CONFIG]
    # the consultation's state first: a request that cannot close anything says so, whatever its body
    if consultation.state is ConsultationState.CLOSED:
        return problem(409, "closed", "the act is already closed")
    if consultation.state is not ConsultationState.ENDED:
        return problem(409, "not-ended", "the consultation has not ended: the act cannot be closed yet")
    share = await _share_choice(request)
    if isinstance(share, web.Response):
        return share
    try:
        done = await app[app_keys.CLINIC].practice.close_act(
            consultation.id, consultation.practitioner_id, base_url=config.http.public_url,
            link_lifetime=datetime.timedelta(days=config.patient_access.lifetime_days),
            tz=zoneinfo.ZoneInfo(config.practice.timezone), share=share, practice_name=config.practice.name)
    except ValueError:
        return problem(400, "bad-share", "a document to share is not one of this consultation's")
    except InvalidTransition:
        state = (await app[app_keys.CLINIC].get_consultation(consultation.id)).state
        if state is ConsultationState.CLOSED:
            return problem(409, "closed", "the act is already closed")
        return problem(409, "not-ended", "the consultation has not ended: the act cannot be closed yet")
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
        return problem(400, "bad-share", "the body must be JSON: {\"share\": [document ids]}")
    share = body.get("share") if isinstance(body, dict) else None
    if not isinstance(share, list) or len(share) > MAX_SHARED or not all(isinstance(i, str) for i in share):
        return problem(400, "bad-share", "'share' must be a list of document ids")
    return share


def add_closing_routes(routes: InvitationRoutes) -> None:
    """Only the practitioner's link of the consultation reaches them; a patient link gets a 404."""
    routes.add("GET", "/{token}/closing", closing, LinkRule(role=Role.PRACTITIONER))
    api = LinkRule(role=Role.PRACTITIONER, json=True)
    routes.add("POST", "/{token}/closing/documents", upload, api)
    routes.add("DELETE", "/{token}/closing/documents/{document_id}", remove, api)
    routes.add("POST", "/{token}/closing/close", close_act, api)
