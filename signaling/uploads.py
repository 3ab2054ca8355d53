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

from clinic import ActClosed, DocumentTooLarge, DocumentTypeRefused, QuotaExceeded
from clinic.quotas import UploadQuota

from . import keys as app_keys
from .config import DocumentsConfig
from .error_pages import problem
from .errors import DiskFull

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
    # under [storage] min_free_mb nothing is read, nothing kept (DiskFull)
    await request.config_dict[app_keys.DISK].ensure_room()
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK):
        size += len(chunk)
        # chunked bodies and lying headers are caught here
        if size > max_bytes:
            raise UploadTooLarge(max_bytes)
        yield chunk


#: What reading and storing an upload may raise; `refusal` turns each into its reply.
UPLOAD_ERRORS: Final = (UploadNameRefused, UploadTooLarge, DocumentTooLarge, DocumentTypeRefused, DiskFull,
                         QuotaExceeded, ActClosed,
                         *INTERRUPTED)


def refusal(exc: BaseException, max_bytes: int) -> web.Response:
    """The reply to one of UPLOAD_ERRORS (the stores have removed what they had written)."""
    if isinstance(exc, UploadNameRefused):
        return problem(400, "bad-name", "Le nom du fichier est trop long. / The file name is too long.")
    if isinstance(exc, (UploadTooLarge, DocumentTooLarge)):
        return too_large(max_bytes)
    if isinstance(exc, QuotaExceeded):
        return quota_used_up(exc)
    if isinstance(exc, ActClosed):
        return problem(409, "closed", "L'acte est clôturé : plus aucun document ne peut y être ajouté. / "
                                      "The act is closed: no more documents can be added.")
    if isinstance(exc, DiskFull):
        return problem(507, "disk-full",
                       "Le serveur manque d'espace disque : le fichier n'a pas été enregistré. / "
                       "The server is short of disk space: the file was not saved.")
    if isinstance(exc, DocumentTypeRefused):
        return problem(415, "type-refused",
                       "Ce type de fichier n'est pas accepté. / This type of file is not accepted.",
                       media_type=exc.media_type)
    return problem(400, "interrupted", "L'envoi a été interrompu. / The upload was interrupted.")


def upload_quota(config: DocumentsConfig) -> UploadQuota:
    """The [documents] quotas of one side and of one consultation."""
    return UploadQuota(per_side=config.max_bytes_per_side, per_consultation=config.max_bytes_per_consultation)


def quota_used_up(exc: QuotaExceeded) -> web.Response:
    """413 `quota`, saying whose room is used up (the page shows its own translation)."""
    size = f"{exc.limit / (1024 * 1024):.4g}"
    who_fr, who_en = ("votre côté", "your side") if exc.scope == "side" else ("cette consultation", "this consultation")
    return problem(413, "quota", f"Plus de place pour les documents de {who_fr} ({size} Mo au total). / "
                                 f"No more room for the documents of {who_en} ({size} MB in all).",
                   scope=exc.scope, max_bytes=exc.limit)


def too_large(max_bytes: int) -> web.Response:
    """413 with the limit, in both languages (the page shows its own translation of `error`)."""
    size = f"{max_bytes / (1024 * 1024):.4g}"
    return problem(413, "too-large",
                   f"Le fichier dépasse la taille maximale autorisée ({size} Mo). / "
                   f"The file is larger than the maximum allowed size ({size} MB).",
                   max_bytes=max_bytes)
