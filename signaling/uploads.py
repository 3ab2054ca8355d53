"""The one way an upload is read: the raw request body, streamed, its name in `?name=`.

Chat files, closing imports and whiteboard backgrounds all go through `read_upload`,
so the size limit, the chunk size and the file-name rule are the same everywhere.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Final

from aiohttp import ClientPayloadError, web
from aiohttp.http_exceptions import HttpProcessingError

from clinic import DocumentTooLarge, DocumentTypeRefused

from .error_pages import problem

#: Bytes read from the request at a time (the stores batch them into bigger writes).
READ_CHUNK: Final = 256 * 1024
MAX_NAME_CHARS: Final = 1024
#: What a dropped connection or a cut body raises while reading the request.
INTERRUPTED: Final = (ConnectionError, asyncio.IncompleteReadError, HttpProcessingError, ClientPayloadError)


class UploadTooLarge(Exception):
    """The body is (or announces itself) larger than the route's limit."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(f"more than {max_bytes} bytes")
        self.max_bytes = max_bytes


class UploadNameRefused(Exception):
    """The `name` query parameter is unusable."""


@dataclasses.dataclass(frozen=True)
class Upload:
    """A file on its way in: its name as the sender gave it, and its bytes as they arrive."""

    name: str
    chunks: AsyncIterator[bytes]


def read_upload(request: web.Request, max_bytes: int) -> Upload:
    """Refuse what announces too many bytes before reading one; count the rest while streaming."""
    name = request.query.get("name", "")
    if len(name) > MAX_NAME_CHARS:
        raise UploadNameRefused("the file name is too long")
    if request.content_length is not None and request.content_length > max_bytes:
        raise UploadTooLarge(max_bytes)
    return Upload(name, _chunks(request, max_bytes))


async def _chunks(request: web.Request, max_bytes: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        # chunked bodies and lying headers are caught here
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        yield chunk


#: What reading and storing an upload may raise; `refusal` turns each into its reply.
UPLOAD_ERRORS: Final = (UploadNameRefused, UploadTooLarge, DocumentTooLarge, DocumentTypeRefused, *INTERRUPTED)


def refusal(exc: BaseException, max_bytes: int) -> web.Response:
    """The reply to one of UPLOAD_ERRORS (the stores have removed what they had written)."""
    if isinstance(exc, UploadNameRefused):
        return problem(400, "bad-name", "Le nom du fichier est trop long. / The file name is too long.")
    if isinstance(exc, (UploadTooLarge, DocumentTooLarge)):
        return too_large(max_bytes)
    if isinstance(exc, DocumentTypeRefused):
        return problem(415, "type-refused",
                       "Ce type de fichier n'est pas accepté. / This type of file is not accepted.",
                       media_type=exc.media_type)
    return problem(400, "interrupted", "L'envoi a été interrompu. / The upload was interrupted.")


def too_large(max_bytes: int) -> web.Response:
    """413 with the limit, in both languages (the page shows its own translation of `error`)."""
    size = f"{max_bytes / (1024 * 1024):.4g}"
    return problem(413, "too-large",
                   f"Le fichier dépasse la taille maximale autorisée ({size} Mo). / "
                   f"The file is larger than the maximum allowed size ({size} MB).",
                   max_bytes=max_bytes)
