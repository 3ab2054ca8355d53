"""Serving a stored document to someone allowed to read it: the same rules as /c/{token}/files."""

from __future__ import annotations

import logging

from aiohttp import web

from clinic.models import Document

from . import keys as app_keys
from .files import FILE_HEADERS, INLINE_TYPES, content_disposition
from .stored_files import stored_file_response

logger = logging.getLogger(__name__)


def inline_allowed(media_type: str, allowed: list[str] | tuple[str, ...] | frozenset[str]) -> bool:
    """Whether a sniffed type may be shown inline rather than downloaded."""
    return media_type in INLINE_TYPES and media_type in allowed


async def serve_document(request: web.Request, document: Document, *, download: bool) -> web.StreamResponse:
    """The document's bytes (Range support, decrypted when sealed), locked down; 404 if its file is gone."""
    clinic = request.app[app_keys.CLINIC]
    path = await clinic.document_path(document)
    inline = not download and inline_allowed(document.media_type, request.app[app_keys.CONFIG].documents.allowed_types)
    content_type = document.media_type + ("; charset=utf-8" if document.media_type == "text/plain" else "")
    return await stored_file_response(request, path, clinic.keyring, {
        **FILE_HEADERS,
        "Content-Type": content_type,
        "Content-Disposition": content_disposition("inline" if inline else "attachment", document.name),
    })
