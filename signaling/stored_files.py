"""Serving a stored file, sealed or plain, with Range requests (web.FileResponse reads only plain files).

Only the chunks a range covers are read and decrypted, in a worker thread, a
piece at a time, so a video can be seeked without decrypting it all.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import BinaryIO, Final

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter

from sealing import Keyring, SealedReader, SealError, open_file
from sealing.stream import plain_size

from .error_pages import error_page

logger = logging.getLogger(__name__)

#: Plain bytes read (and decrypted) per worker-thread hop.
PIECE: Final = 1024 * 1024


def _read_at(f: BinaryIO, offset: int, length: int) -> bytes | memoryview:
    if isinstance(f, SealedReader):
        return f.view_at(offset, length)  # no copy of the decrypted bytes
    f.seek(offset)
    return f.read(length)


def _span(request: web.Request, size: int) -> tuple[int, int] | None:
    """[start, end) asked for (the whole file without a Range header), None when unsatisfiable."""
    try:
        asked = request.http_range
    except ValueError:
        return None
    start, stop = asked.start, asked.stop
    if start is None and stop is None:
        return 0, size
    if start is None:
        start = 0
    if start < 0:  # "bytes=-N": the last N bytes
        start, stop = max(0, size + start), size
    stop = size if stop is None else min(stop, size)
    if start >= size or start >= stop:
        return None
    return start, stop


class StoredFileResponse(web.StreamResponse):
    """Sends its bytes when aiohttp prepares it (as web.FileResponse does), so middlewares still add headers."""

    def __init__(self, f: BinaryIO, name: str, start: int, end: int, size: int, *, partial: bool,
                 headers: dict[str, str]) -> None:
        super().__init__(status=206 if partial else 200, headers={**headers, "Accept-Ranges": "bytes"})
        if partial:
            self.headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        self.content_length = end - start
        self._stored, self._stored_name, self._from, self._to = f, name, start, end

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        try:
            writer = await super().prepare(request)
            if request.method == hdrs.METH_HEAD:
                return writer
            offset = self._from
            while offset < self._to:
                try:
                    data = await asyncio.to_thread(_read_at, self._stored, offset, min(PIECE, self._to - offset))
                except SealError as exc:
                    # the headers are gone already: cut the response short rather than send bad bytes
                    logger.error("Stored file %s damaged at %d: %s", self._stored_name, offset, exc)
                    raise ConnectionResetError("stored file damaged") from None
                if not data:
                    break
                await self.write(data)
                offset += len(data)
            await self.write_eof()
            return writer
        finally:
            await asyncio.to_thread(self._stored.close)


async def stored_file_response(request: web.Request, path: Path, keyring: Keyring | None,
                               headers: dict[str, str]) -> web.StreamResponse:
    """The file's plain bytes (200, or 206 for a Range), `headers` added; 404 if the file is gone."""
    try:
        f = await asyncio.to_thread(open_file, path, keyring)
    except FileNotFoundError:
        logger.warning("Stored file %s is missing", path.name)
        return error_page("not-found")
    except SealError as exc:
        logger.error("Stored file %s cannot be read: %s", path.name, exc)
        return error_page("not-found")
    size = plain_size(f)
    partial = hdrs.RANGE in request.headers
    span = _span(request, size) if partial else (0, size)
    if span is None:
        await asyncio.to_thread(f.close)
        return web.Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}",
                                                  "Content-Type": "text/plain"})
    return StoredFileResponse(f, path.name, span[0], span[1], size, partial=partial, headers=headers)


def _open_and_unlink(path: Path) -> BinaryIO:
    f = path.open("rb")
    path.unlink()  # gone from the folder at once; the open file lives until the response ends
    return f


async def temporary_file_response(request: web.Request, path: Path, headers: dict[str, str]) -> web.StreamResponse:
    """Send a temporary plain file (an export) whole, deleting it from its folder before the first byte."""
    f = await asyncio.to_thread(_open_and_unlink, path)
    size = plain_size(f)
    return StoredFileResponse(f, path.name, 0, size, size, partial=False, headers=headers)
