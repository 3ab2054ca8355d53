"""The call's routes under `/c/{token}`: the waiting-room page, its WebSocket, chat files, the whiteboard."""

from __future__ import annotations

from aiohttp import web

from cluster import NodeDraining

from .. import keys as app_keys
from .. import nodes
from ..error_pages import error_page
from ..invitation_links import INVITATION, InvitationRoutes, LinkRule
from . import board_routes, files
from .session import Session


async def waiting_room(request: web.Request) -> web.StreamResponse:
    cluster = request.config_dict.get(app_keys.CLUSTER)
    owner = await nodes.served_elsewhere(cluster, request[INVITATION].consultation_id, claim=False)
    if owner is not None:  # another node serves this consultation: the browser goes there
        raise web.HTTPTemporaryRedirect(owner + request.path_qs)
    response = web.FileResponse(request.config_dict[app_keys.WEB_ROOT] / "room.html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    invitation = request[INVITATION]
    config = request.config_dict[app_keys.CONFIG]
    hubs = request.config_dict[app_keys.HUBS]
    cluster = request.config_dict.get(app_keys.CLUSTER)
    try:
        if await nodes.served_elsewhere(cluster, invitation.consultation_id, claim=True) is not None:
            return error_page("served-elsewhere")  # the page's next load is sent to the owner
    except NodeDraining:  # the browser tries again through the site's address, to a live node
        return error_page("node-stopping")
    ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=4 * config.limits.max_message_bytes)
    await ws.prepare(request)
    hub = await hubs.get(invitation.consultation_id)
    session = Session(ws, invitation.role, hub, config, probe_drop_rate=request.config_dict[app_keys.PROBE_DROP_RATE])
    try:
        await session.run()
    finally:
        hubs.release(hub)
        await nodes.released(cluster, hubs, invitation.consultation_id)
    return ws


def add_call_routes(routes: InvitationRoutes) -> None:
    routes.add("GET", "/{token}", waiting_room)
    routes.add("GET", "/{token}/ws", websocket)
    # a file link tells nothing to someone who is not a participant, whatever the token's state
    routes.add("POST", "/{token}/files", files.upload, LinkRule(hidden=True))
    routes.add("GET", "/{token}/files/{document_id}", files.download, LinkRule(hidden=True))
    routes.add("POST", "/{token}/whiteboard/background", board_routes.upload_background)
    routes.add("GET", r"/{token}/whiteboard/{background:[0-9a-f]{32}}/{page:\d{1,5}}.png", board_routes.background_page)
