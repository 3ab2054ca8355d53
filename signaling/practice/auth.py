"""Practitioner sessions in cookies, and CSRF protection of every state-changing request.

Session cookie `tc_session`: HttpOnly, SameSite=Lax, Secure on HTTPS or when the
config says so; a new one at each login (no fixation).  CSRF: the token of the
practitioner's session, or before login a random `tc_csrf` cookie (double
submit); forms send it as the `csrf` field, scripts as the `X-CSRF-Token` header.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from clinic.accounts import WebSession

from .. import keys as app_keys
from ..error_pages import error_page

logger = logging.getLogger(__name__)

SESSION_COOKIE: Final = "tc_session"
CSRF_COOKIE: Final = "tc_csrf"
CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
UNSAFE_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# None when looked up and absent; missing when not looked up yet
_SESSION = web.RequestKey("practitioner_session", object)
_NEW_CSRF = web.RequestKey("new_csrf_cookie", str)


def secure_request(request: web.Request) -> bool:
    """Whether cookies must be Secure: an HTTPS request, or the operator said so."""
    return request.secure or request.config_dict[app_keys.CONFIG].accounts.secure_cookies


async def current_session(request: web.Request) -> WebSession | None:
    """The logged-in practitioner's session of this request, or None (looked up once)."""
    if _SESSION not in request:
        token = request.cookies.get(SESSION_COOKIE)
        found = None
        if token:
            found = await request.config_dict[app_keys.CLINIC].practice.session(token)
        request[_SESSION] = found
    value = request[_SESSION]
    return value if isinstance(value, WebSession) else None


async def require_session(request: web.Request) -> WebSession:
    """The logged-in practitioner, or a redirect to the login page (then back here)."""
    session = await current_session(request)
    if session is None:
        target = request.rel_url.path_qs if request.method == "GET" else "/"
        raise web.HTTPSeeOther("/login" if target == "/" else "/login?next=" + urllib.parse.quote(target, safe=""))
    return session


async def csrf_token(request: web.Request) -> str:
    """The token forms of this page must carry (made, and set as a cookie, when missing)."""
    session = await current_session(request)
    if session is not None:
        return session.csrf_token
    existing = request.get(_NEW_CSRF) or request.cookies.get(CSRF_COOKIE)
    if existing and 20 <= len(existing) <= 100:
        return existing
    token = secrets.token_urlsafe(32)
    request[_NEW_CSRF] = token
    return token


def client_address(request: web.Request) -> str:
    """The client's address for rate limits (the one a trusted proxy reported: signaling.proxy)."""
    return request.remote or "unknown"


def see_other(location: str) -> web.Response:
    """A 303 redirect returned (not raised), so cookies can be set on it."""
    return web.Response(status=303, headers={"Location": location})


def set_session_cookie(request: web.Request, response: web.StreamResponse, token: str, max_age: int) -> None:
    """Give the browser its new session, and drop the pre-login CSRF cookie."""
    response.set_cookie(SESSION_COOKIE, token, max_age=max_age, path="/", httponly=True, samesite="Lax",
                        secure=secure_request(request))
    response.del_cookie(CSRF_COOKIE, path="/")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path="/")


def csrf_protected(path: str) -> bool:
    """Every state-changing request is checked, but those authorised by a secret in their URL.

    The invitation routes (/c/{token}/...) of the call carry their capability in
    the path, which a forging site cannot know, and no cookie; the closing page's
    requests are checked all the same.
    """
    if path.startswith("/c/"):
        return "/closing" in path
    return True


async def _given_token(request: web.Request) -> str | None:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.content_type == "application/x-www-form-urlencoded":
        form = await request.post()  # aiohttp keeps it for the handler
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def _expected_token(request: web.Request) -> str | None:
    session = await current_session(request)
    if session is not None:
        return session.csrf_token
    return request.cookies.get(CSRF_COOKIE)


def _refuse(request: web.Request) -> web.Response:
    logger.info("CSRF check failed on %s %s", request.method, request.path.split("/c/")[0].split("/d/")[0] or "/")
    if request.headers.get(CSRF_HEADER) is not None or "json" in request.headers.get("Accept", ""):
        return web.json_response(
            {"error": "csrf", "message": "missing or wrong CSRF token: reload the page and try again"}, status=403)
    return error_page("csrf")


@web.middleware
async def csrf_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Refuse (403) a state-changing request without the right CSRF token; set new CSRF cookies."""
    if request.method in UNSAFE_METHODS and csrf_protected(request.path):
        expected = await _expected_token(request)
        given = await _given_token(request)
        if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
            return _refuse(request)
    response = await handler(request)
    new = request.get(_NEW_CSRF)
    if new and not response.prepared:
        response.set_cookie(CSRF_COOKIE, new, path="/", httponly=True, samesite="Strict",
                            secure=secure_request(request))
    return response
