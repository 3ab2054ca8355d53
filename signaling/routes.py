"""The site's routes: app-wide middlewares, static files, health and statistics; the rest mounted here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from . import keys as app_keys
from .accesslog import route_name
from .call.routes import add_call_routes
from .error_pages import error_page
from .failures import log_failure
from .invitation_links import InvitationRoutes
from .practice.auth import csrf_middleware
from .practice.closing import add_closing_routes
from .practice.patient_access import setup_patient_access_routes
from .practice.views import setup_practice_routes

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


def site_policy(site_url: str) -> str:
    """The page's policy when a call may reconnect through the site's shared address ([cluster] site_url)."""
    socket_origin = "ws" + site_url.rstrip("/").removeprefix("http")  # http -> ws, https -> wss
    policy = _SECURITY_HEADERS["Content-Security-Policy"]
    return policy.replace("connect-src 'self'", f"connect-src 'self' {socket_origin}")


async def static_file(request: web.Request) -> web.StreamResponse:
    root = request.config_dict[app_keys.WEB_ROOT].resolve()
    path = (root / request.match_info["path"]).resolve()
    # nothing outside the web folder, no Python sources, no folders
    if not path.is_relative_to(root) or path.suffix == ".py" or not path.is_file():
        return error_page("not-found")
    return web.FileResponse(path, headers={"Cache-Control": "no-cache"})


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
    except Exception as exc:
        # one line with a code in the log (the traceback at DEBUG); the user a plain page;
        # the route's template, never the path: invitation and patient links carry their token in it
        log_failure(logger, exc, "%s %s", request.method, route_name(request))
        response = error_page("server-error")
    if not response.prepared:
        config = request.config_dict[app_keys.CONFIG]
        headers = _SECURITY_HEADERS
        if config.cluster.site_url and "Content-Security-Policy" not in response.headers:
            headers = {**headers, "Content-Security-Policy": site_policy(config.cluster.site_url)}
        response.headers.update({k: v for k, v in headers.items() if k not in response.headers})
        if request.secure or config.http.public_url.startswith("https://"):
            # browsers then refuse plain HTTP to this site for a year (HTTPS pages only)
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def setup_routes(app: web.Application, web_root: Path) -> None:
    app[app_keys.WEB_ROOT] = web_root
    app.middlewares.append(security_headers)
    app.middlewares.append(csrf_middleware)
    app.router.add_get("/healthz", health)
    app.router.add_get("/favicon.ico", favicon)
    app.router.add_get("/static/{path:.+}", static_file)
    setup_practice_routes(app)
    setup_patient_access_routes(app)
    links = InvitationRoutes(app)
    add_call_routes(links)
    add_closing_routes(links)
    links.mount()
