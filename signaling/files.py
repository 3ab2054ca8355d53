"""Files shared in the chat over HTTP: upload (streamed to disk) and download, participants only."""

from __future__ import annotations

import asyncio
import logging
import re
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any, Final

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from clinic import (
    DocumentTooLarge,
    DocumentTypeRefused,
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    NotFound,
)
from clinic.chat import ChatMessage
from clinic.models import Document, Invitation

from . import keys as app_keys
from .chat import document_json, message_json
from .pages import error_page
from .stored_files import stored_file_response

logger = logging.getLogger(__name__)

#: Bytes read from the request at a time (the store batches them into bigger writes).
READ_CHUNK: Final = 256 * 1024
MAX_NAME_CHARS: Final = 1024
#: Types a browser may show inside the page (when also allowed by [documents] allowed_types).
INLINE_TYPES: Final = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp",
    "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4",
    "video/webm", "video/mp4", "video/ogg", "video/quicktime", "video/x-matroska",
    "application/pdf",
})
# what a dropped connection or a cut body raises while reading the request
_INTERRUPTED: Final = (ConnectionError, asyncio.IncompleteReadError, HttpProcessingError, ClientPayloadError)
_DOCUMENT_ID: Final = re.compile(r"[0-9a-f]{32}")
# a served file may run nothing, load nothing, and is a unique origin even when opened in a tab
FILE_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def _mebibytes(size: int) -> str:
    return f"{size / (1024 * 1024):.4g}"


def _refusal(status: int, code: str, fr: str, en: str, **extra: Any) -> web.Response:
    # `message` is for people reading raw HTTP; the page translates `error` itself
    return web.json_response({"error": code, "message": f"{fr} / {en}", **extra}, status=status,
                             headers={"Cache-Control": "no-store"})


def too_large(limit: int) -> web.Response:
    size = _mebibytes(limit)
    return _refusal(413, "too-large",
                    f"Le fichier dépasse la taille maximale autorisée ({size} Mo).",
                    f"The file is larger than the maximum allowed size ({size} MB).",
                    max_bytes=limit)


async def _participant(request: web.Request) -> Invitation | None:
    """The invitation behind the link's token, or None (unknown, expired, revoked: all the same 404)."""
    clinic = request.app[app_keys.CLINIC]
    try:
        return await clinic.resolve_invitation(request.match_info["token"])
    except (InvitationNotFound, InvitationExpired, InvitationRevoked):
        return None


async def upload(request: web.Request) -> web.Response:
    """POST /c/{token}/files?name=...: the raw body is the file; it becomes a chat message of both sides."""
    invitation = await _participant(request)
    if invitation is None:
        return error_page("not-found")
    config = request.app[app_keys.CONFIG].documents
    limit = config.max_upload_bytes
    name = request.query.get("name", "")
    if len(name) > MAX_NAME_CHARS:
        return _refusal(400, "bad-name", "Le nom du fichier est trop long.", "The file name is too long.")
    # refused before reading a byte when the size is announced ...
    if request.content_length is not None and request.content_length > limit:
        logger.info("Consultation(%s) upload refused: %d bytes announced, limit %d",
                    invitation.consultation_id, request.content_length, limit)
        return too_large(limit)

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.content.iter_chunked(READ_CHUNK):
            yield chunk

    clinic = request.app[app_keys.CLINIC]
    try:
        # ... and counted while streaming (chunked bodies, lying headers)
        document = await clinic.store_document(
            invitation.consultation_id, "chat", name, invitation.role.value, body(),
            max_bytes=limit, allowed_types=config.allowed_types,
        )
    except DocumentTooLarge:
        logger.info("Consultation(%s) upload refused: over %d bytes", invitation.consultation_id, limit)
        return too_large(limit)
    except DocumentTypeRefused as exc:
        logger.info("Consultation(%s) upload refused: type %s", invitation.consultation_id, exc.media_type)
        return _refusal(415, "type-refused",
                        "Ce type de fichier n'est pas accepté.", "This type of file is not accepted.",
                        media_type=exc.media_type)
    except _INTERRUPTED as exc:
        logger.info("Consultation(%s) upload interrupted (%s): nothing kept",
                    invitation.consultation_id, type(exc).__name__)
        return _refusal(400, "interrupted", "L'envoi a été interrompu.", "The upload was interrupted.")
    except NotFound:
        return error_page("not-found")
    message = await post_file_message(request.app, invitation, document)
    return web.json_response({"document": document_json(document), "message": message_json(message)},
                             status=201, headers={"Cache-Control": "no-store"})


async def post_file_message(app: web.Application, invitation: Invitation, document: Document) -> ChatMessage:
    """Tell both sides (through the live chat when someone is connected; stored either way)."""
    hub = app[app_keys.HUBS].find(invitation.consultation_id)
    if hub is not None:
        return await hub.chat.post_file(invitation.role, document)
    return await app[app_keys.CLINIC].add_chat_message(
        invitation.consultation_id, "file", invitation.role.value, document_id=document.id
    )


def content_disposition(kind: str, name: str) -> str:
    """`inline` or `attachment`, with the UTF-8 name (RFC 6266) and a plain ASCII fallback."""
    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "_", name) or "document"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


async def download(request: web.Request) -> web.StreamResponse:
    """GET /c/{token}/files/{document_id}: only the participants of that consultation; anyone else 404."""
    invitation = await _participant(request)
    document_id = request.match_info["document_id"]
    if invitation is None or not _DOCUMENT_ID.fullmatch(document_id):
        return error_page("not-found")
    clinic = request.app[app_keys.CLINIC]
    try:
        document = await clinic.get_document(document_id)
    except NotFound:
        return error_page("not-found")
    if document.consultation_id != invitation.consultation_id:
        return error_page("not-found")  # no hint that it exists
    path = await clinic.document_path(document)
    allowed = request.app[app_keys.CONFIG].documents.allowed_types
    inline = document.media_type in INLINE_TYPES and document.media_type in allowed
    content_type = document.media_type + ("; charset=utf-8" if document.media_type == "text/plain" else "")
    headers = {
        **FILE_HEADERS,
        "Content-Type": content_type,
        "Content-Disposition": content_disposition("inline" if inline else "attachment", document.name),
    }
    return await stored_file_response(request, path, clinic.keyring, headers)
