"""HTTP side of the whiteboard: a background document uploaded, its pages served as PNG."""

from __future__ import annotations

import asyncio
import logging
import uuid

from aiohttp import web

from clinic import NotFound, Stage
from clinic.boardimages import BackgroundRefused

from .. import keys as app_keys
from ..error_pages import error_page, problem
from ..invitation_links import INVITATION
from ..stored_files import stored_file_response
from ..uploads import UPLOAD_ERRORS, read_upload, refusal

logger = logging.getLogger(__name__)


async def upload_background(request: web.Request) -> web.StreamResponse:
    """POST the file as the request body (any label: the type is read from the bytes)."""
    invitation = request[INVITATION]
    config = request.config_dict[app_keys.CONFIG].whiteboard
    clinic = request.config_dict[app_keys.CLINIC]
    hub = request.config_dict[app_keys.HUBS].find(invitation.consultation_id)
    if hub is None or hub.state.stage(invitation.role) is not Stage.IN_CALL:
        return problem(409, "out-of-order", "the whiteboard is only available in the call")
    limit = config.max_upload_bytes
    try:
        file = read_upload(request, limit)
    except UPLOAD_ERRORS as exc:
        return refusal(exc, limit)
    if await clinic.count_board_backgrounds(invitation.consultation_id) >= config.max_backgrounds:
        return problem(409, "too-many", f"a consultation shows at most {config.max_backgrounds} documents on its board")
    images = request.config_dict[app_keys.BOARD_IMAGES]
    folder = images.folder(invitation.consultation_id)
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    part = folder / f".upload-{uuid.uuid4().hex}"
    try:
        size = 0
        f = await asyncio.to_thread(part.open, "wb")
        try:
            async for chunk in file.chunks:
                size += len(chunk)
                await asyncio.to_thread(f.write, chunk)
        except UPLOAD_ERRORS as exc:
            return refusal(exc, limit)
        finally:
            await asyncio.to_thread(f.close)
        if size == 0:
            return problem(400, "bad-message", "the request body is empty: send the file")
        try:
            background = await images.import_background(invitation.consultation_id, part)
        except BackgroundRefused as exc:
            return problem(415, "bad-type", str(exc))
        await clinic.add_board_background(invitation.consultation_id, background)
        logger.info("Whiteboard(%s) background %s from %s", invitation.consultation_id, background.id,
                    invitation.role.value)
        await hub.whiteboard.set_background(background)
        return web.json_response({"background": background.as_json()})
    finally:
        await asyncio.to_thread(part.unlink, missing_ok=True)


async def background_page(request: web.Request) -> web.StreamResponse:
    """One page of a background of this invitation's consultation, as PNG; anything else 404."""
    consultation_id = request[INVITATION].consultation_id
    try:
        page = int(request.match_info["page"])
        background = await request.config_dict[app_keys.CLINIC].get_board_background(
            consultation_id, request.match_info["background"])
        path = await request.config_dict[app_keys.BOARD_IMAGES].page_path(consultation_id, background, page)
    except (ValueError, NotFound, BackgroundRefused):
        return error_page("not-found")
    return await stored_file_response(request, path, request.config_dict[app_keys.BOARD_IMAGES].keyring, {
        "Content-Type": "image/png", "Cache-Control": "private, max-age=86400, immutable",
    })
