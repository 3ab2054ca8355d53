"""HTTP routes: the waiting-room page, its WebSocket, the closing page, static files."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from clinic import InvitationExpired, InvitationNotFound, InvitationRevoked, Role
from clinic.models import Invitation

from . import files
from . import keys as app_keys
from . import nodes
from .accesslog import route_name
from .auth import csrf_middleware
from .closing import setup_closing_routes
from .pages import error_page
from .patient_access import setup_patient_access_routes
from .practice import setup_practice_routes
from .session import Session

logger = logging.getLogger(__name__)

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        "connect-src 'self'; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self), microphone=(self), display-capture=(self)",
}


async def _invitation(request: web.Request) -> Invitation | web.Response:
    clinic = request.app[app_keys.CLINIC]
    try:
        return await clinic.resolve_invitation(request.match_info["token"])
    except InvitationNotFound:
        return error_page("invitation-unknown")
    except (InvitationExpired, InvitationRevoked):
        return error_page("invitation-gone")


async def waiting_room(request: web.Request) -> web.StreamResponse:
    found = await _invitation(request)
    if isinstance(found, web.Response):
        return found
    owner = await nodes.served_elsewhere(request.app.get(app_keys.CLUSTER), found.consultation_id, claim=False)
    if owner is not None:  # another node serves this consultation: the browser goes there
        raise web.HTTPTemporaryRedirect(owner + request.path_qs)
    response = web.FileResponse(request.app[app_keys.WEB_ROOT] / "room.html")
    response.headers["Cache-Control"] = "no-store"
    return response


async def websocket(request: web.Request) -> web.StreamResponse:
    found = await _invitation(request)
    if isinstance(found, web.Response):
        return found
    config = request.app[app_keys.CONFIG]
    hubs = request.app[app_keys.HUBS]
    cluster = request.app.get(app_keys.CLUSTER)
    if await nodes.served_elsewhere(cluster, found.consultation_id, claim=True) is not None:
        return error_page("served-elsewhere")  # the page's next load is sent to the owner
    ws = web.WebSocketResponse(heartbeat=15.0, max_msg_size=4 * config.limits.max_message_bytes)
    await ws.prepare(request)
    hub = await hubs.get(found.consultation_id)
    session = Session(ws, found.role, hub, config, probe_drop_rate=request.app[app_keys.PROBE_DROP_RATE])
    try:
        await session.run()
    finally:
        hubs.release(hub)
        await nodes.released(cluster, hubs, found.consultation_id)
    return ws


async def static_file(request: web.Request) -> web.StreamResponse:
    root = request.app[app_keys.WEB_ROOT].resolve()
    path = (root / request.match_info["path"]).resolve()
    # nothing outside the web folder, no Python sources, no folders
    if not path.is_relative_to(root) or path.suffix == ".py" or not path.is_file():
        return error_page("not-found")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


async def stats(request: web.Request) -> web.Response:
    monitor = request.app[app_keys.MONITOR]
    if not monitor.allowed(request):
        return error_page("not-found")  # no hint that it exists
    return web.json_response(monitor.snapshot)


async def metrics(request: web.Request) -> web.Response:
    monitor = request.app[app_keys.MONITOR]
    if not monitor.allowed(request):
        return error_page("not-found")
    return web.Response(text=monitor.prometheus(), content_type="text/plain", charset="utf-8",
                        headers={"X-Prometheus-Format": "0.0.4"})


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def favicon(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently("/static/favicon.svg")


@web.middleware
async def security_headers(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
    except web.HTTPNotFound:
        response = error_page("not-found")
    except web.HTTPException:
        raise
    except Exception:
        # the operator gets the traceback in the log; the user a plain page
        # the route's template, never the path: invitation and patient links carry their token in it
        logger.exception("unhandled error on %s %s", request.method, route_name(request))
        response = error_page("server-error")
    if not response.prepared:
        response.headers.update({k: v for k, v in _SECURITY_HEADERS.items() if k not in response.headers})
    return response


def setup_routes(app: web.Application, web_root: Path) -> None:
    app[app_keys.WEB_ROOT] = web_root
    app.middlewares.append(security_headers)
    app.middlewares.append(csrf_middleware)
    app.router.add_get("/c/{token}", waiting_room)
    app.router.add_get("/c/{token}/ws", websocket)
    app.router.add_post("/c/{token}/files", files.upload)
    app.router.add_get("/c/{token}/files/{document_id}", files.download)
    app.router.add_get("/healthz", health)
    app.router.add_get("/stats", stats)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/static/{path:.+}", static_file)
    setup_practice_routes(app)
    setup_closing_routes(app)
    setup_patient_access_routes(app)
