"""Serving a stored document to someone allowed to read it (call files, the record, the patient's link)."""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Collection
from typing import Final

from aiohttp import web

from clinic.models import Document

from . import keys as app_keys
from .stored_files import stored_file_response

logger = logging.getLogger(__name__)

#: Types a browser may show inside the page (when also allowed by [documents] allowed_types).
INLINE_TYPES: Final = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "image/avif",
    "audio/mpeg", "audio/ogg", "audio/wav", "audio/mp4",
    "video/webm", "video/mp4", "video/ogg", "video/quicktime", "video/x-matroska",
    "application/pdf",
})
# a served file may run nothing, load nothing, and is a unique origin even when opened in a tab
FILE_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "private, no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Referrer-Policy": "no-referrer",
}


def inline_allowed(media_type: str, allowed: Collection[str]) -> bool:
    """Whether a sniffed type may be shown inline rather than downloaded."""
    return media_type in INLINE_TYPES and media_type in allowed


def content_disposition(kind: str, name: str) -> str:
    """`inline` or `attachment`, with the UTF-8 name (RFC 6266) and a plain ASCII fallback."""
    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "_", name) or "document"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


async def serve_document(request: web.Request, document: Document, *, download: bool) -> web.StreamResponse:
    """The document's bytes (Range support, decrypted when sealed), locked down; 404 if its file is gone."""
    clinic = request.config_dict[app_keys.CLINIC]
    path = await clinic.document_path(document)
    allowed = request.config_dict[app_keys.CONFIG].documents.allowed_types
    inline = not download and inline_allowed(document.media_type, allowed)
    content_type = document.media_type + ("; charset=utf-8" if document.media_type == "text/plain" else "")
    return await stored_file_response(request, path, clinic.keyring, {
        **FILE_HEADERS,
        "Content-Type": content_type,
        "Content-Disposition": content_disposition("inline" if inline else "attachment", document.name),
    })
