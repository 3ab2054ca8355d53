"""The HTTP access log, without the secrets that links carry in their path."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from .proxy import CLIENT


class RedactingAccessLogger(AbstractAccessLogger):
    """One line per request naming the matched route's template, never the path itself.

    Invitation links (`/c/{token}`) and the patient's document links (`/d/{token}`)
    are bearer secrets: aiohttp's default format would write them to the log.
    """

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if not self.logger.isEnabledFor(logging.INFO):
            return
        # the client's address as the trusted proxy reported it (signaling.proxy), else the peer's
        client = request.get(CLIENT, request.remote) if isinstance(request, web.Request) else request.remote
        self.logger.info("%s %s %s %d %.1f ms", client, request.method, route_name(request),
                         response.status, time * 1000)


def route_name(request: web.BaseRequest) -> str:
    """The matched route's template (e.g. `/d/{token}`), or `(no route)`."""
    # a request that failed HTTP parsing never reached the router: aiohttp's match_info
    # then asserts, which made the access logger raise and drop the line
    match_info = getattr(request, "_match_info", None)
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    return resource.canonical if resource is not None else "(no route)"
