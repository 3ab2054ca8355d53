"""Serving a stored document to someone allowed to read it (the contract's headers)."""

from __future__ import annotations

import urllib.parse
from typing import Final

from aiohttp import web

from clinic import Clinic
from clinic.models import Document

# shown in the browser (the type was sniffed from the bytes); anything else is downloaded
INLINE_TYPES: Final = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
})
INLINE_PREFIXES: Final = ("audio/", "video/")


def inline_allowed(media_type: str) -> bool:
    """Whether a sniffed type may be shown inline rather than downloaded."""
    return media_type in INLINE_TYPES or media_type.startswith(INLINE_PREFIXES)


def content_disposition(name: str, inline: bool) -> str:
    """RFC 6266 header with an ASCII fallback and the UTF-8 name."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\;' else "_" for c in name) or "document"
    quoted = urllib.parse.quote(name, safe="")
    return f"{'inline' if inline else 'attachment'}; filename=\"{fallback}\"; filename*=UTF-8''{quoted}"


async def serve_document(clinic: Clinic, document: Document, *, download: bool) -> web.FileResponse:
    """A FileResponse (with Range support) of the document's bytes, locked down."""
    path = await clinic.document_path(document)
    inline = not download and inline_allowed(document.media_type)
    return web.FileResponse(path, headers={
        "Content-Type": document.media_type,
        "Content-Disposition": content_disposition(document.name, inline),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cache-Control": "private, no-store",
    })
