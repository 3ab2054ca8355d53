"""HTTP side of the whiteboard: a background document uploaded, its pages served as PNG."""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import web

from clinic import NotFound, Stage
from clinic.boardimages import BackgroundRefused

from . import keys as app_keys
from .pages import error_page
from .routes import _invitation
from .stored_files import stored_file_response

logger = logging.getLogger(__name__)

CHUNK = 65536


def _refuse(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def upload_background(request: web.Request) -> web.StreamResponse:
    """POST the file as the request body (any label: the type is read from the bytes)."""
    found = await _invitation(request)
    if isinstance(found, web.Response):
        return found
    config = request.app[app_keys.CONFIG].whiteboard
    hub = request.app[app_keys.HUBS].find(found.consultation_id)
    if hub is None or hub.state.stage(found.role) is not Stage.IN_CALL:
        return _refuse(409, "out-of-order", "the whiteboard is only available in the call")
    limit = config.max_upload_bytes
    if request.content_length is not None and request.content_length > limit:
        return _refuse(413, "too-large", f"a background document has at most {limit} bytes")
    if await request.app[app_keys.CLINIC].count_board_backgrounds(found.consultation_id) >= config.max_backgrounds:
        return _refuse(409, "too-many", f"a consultation shows at most {config.max_backgrounds} documents on its board")
    images = request.app[app_keys.BOARD_IMAGES]
    folder = images.folder(found.consultation_id)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    part = folder / f".upload-{uuid.uuid4().hex}"
    try:
        size = 0
        f = await asyncio.to_thread(part.open, "wb")
        try:
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    return _refuse(413, "too-large", f"a background document has at most {limit} bytes")
                await asyncio.to_thread(f.write, chunk)
        finally:
            await asyncio.to_thread(f.close)
        if size == 0:
            return _refuse(400, "bad-message", "the request body is empty: send the file")
        try:
            background = await images.import_background(found.consultation_id, part)
        except BackgroundRefused as exc:
            return _refuse(415, "bad-type", str(exc))
        await request.app[app_keys.CLINIC].add_board_background(found.consultation_id, background)
        logger.info("Whiteboard(%s) background %s from %s", found.consultation_id, background.id, found.role.value)
        await hub.whiteboard.set_background(background)
        return web.json_response({"background": background.as_json()})
    finally:
        await asyncio.to_thread(part.unlink, missing_ok=True)


async def background_page(request: web.Request) -> web.StreamResponse:
    """One page of a background of this invitation's consultation, as PNG; anything else 404."""
    found = await _invitation(request)
    if isinstance(found, web.Response):
        return found
    try:
        page = int(request.match_info["page"])
        background = await request.app[app_keys.CLINIC].get_board_background(
            found.consultation_id, request.match_info["background"])
        path = await request.app[app_keys.BOARD_IMAGES].page_path(found.consultation_id, background, page)
    except (ValueError, NotFound, BackgroundRefused):
        return error_page("not-found")
    return await stored_file_response(request, path, request.app[app_keys.BOARD_IMAGES].keyring, {
        "Content-Type": "image/png", "Cache-Control": "private, max-age=86400, immutable",
    })


def setup_board_routes(app: web.Application) -> None:
    app.router.add_post("/c/{token}/whiteboard/background", upload_background)
    app.router.add_get(r"/c/{token}/whiteboard/{background:[0-9a-f]{32}}/{page:\d{1,5}}.png", background_page)
