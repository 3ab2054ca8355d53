"""Files shared in the chat over HTTP: upload (streamed to disk) and download, participants only."""

from __future__ import annotations

import logging
import re
from typing import Final

from aiohttp import web

from clinic import NotFound

from .. import keys as app_keys
from ..downloads import serve_document
from ..error_pages import error_page
from ..invitation_links import INVITATION
from ..uploads import UPLOAD_ERRORS, read_upload, refusal, upload_quota
from .chat import document_json, message_json

logger = logging.getLogger(__name__)

_DOCUMENT_ID: Final = re.compile(r"[0-9a-f]{32}")


async def upload(request: web.Request) -> web.Response:
    """POST /c/{token}/files?name=...: the raw body is the file; it becomes a chat message of both sides."""
    invitation = request[INVITATION]
    config = request.config_dict[app_keys.CONFIG].documents
    limit = config.max_upload_bytes
    clinic = request.config_dict[app_keys.CLINIC]
    try:
        file = read_upload(request, limit)
        document = await clinic.store_document(
            invitation.consultation_id, "chat", file.name, invitation.role.value, file.chunks,
            max_bytes=limit, allowed_types=config.allowed_types, quota=upload_quota(config), refuse_closed=True,
        )
    except UPLOAD_ERRORS as exc:
        logger.info("Consultation(%s) upload refused (%s): nothing kept", invitation.consultation_id,
                    type(exc).__name__)
        return refusal(exc, limit)
    except NotFound:
        return error_page("not-found")
    # tell both sides (through the live chat when someone is connected; stored either way)
    hub = request.config_dict[app_keys.HUBS].find(invitation.consultation_id)
    if hub is not None:
        message = await hub.chat.post_file(invitation.role, document)
    else:
        message = await clinic.add_chat_message(invitation.consultation_id, "file", invitation.role.value,
                                                document_id=document.id)
    return web.json_response({"document": document_json(document), "message": message_json(message)},
                             status=201, headers={"Cache-Control": "no-store"})


async def download(request: web.Request) -> web.StreamResponse:
    """GET /c/{token}/files/{document_id}: only the participants of that consultation; anyone else 404."""
    document_id = request.match_info["document_id"]
    if not _DOCUMENT_ID.fullmatch(document_id):
        return error_page("not-found")
    try:
        document = await request.config_dict[app_keys.CLINIC].get_document(document_id)
    except NotFound:
        return error_page("not-found")
    if document.consultation_id != request[INVITATION].consultation_id:
        return error_page("not-found")  # no hint that it exists
    return await serve_document(request, document, download=False)
