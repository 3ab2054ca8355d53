"""The `/c/{token}/…` routes as one sub-application: the invitation is resolved once, in one middleware.

Every route of the call (waiting room, WebSocket, chat files, whiteboard) and of the
closing page is added through `InvitationRoutes.add`, which records who may use it
and how a refusal looks there (a page or JSON).  Handlers read the resolved
invitation from `request[INVITATION]` and never look at the token themselves.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from clinic import InvitationExpired, InvitationNotFound, InvitationRevoked, Role
from clinic.errors import AppointmentCancelled, AppointmentMoved
from clinic.models import Invitation

from . import keys as app_keys
from .error_pages import MESSAGES, error_page, problem

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: The usable invitation behind the link's token, set by the middleware before any handler runs.
INVITATION = web.RequestKey("invitation", Invitation)


@dataclasses.dataclass(frozen=True)
class LinkRule:
    """Who may use a route and how it refuses the others."""

    #: only this side's link reaches the route; the other side gets the same 404 as an unknown address
    role: Role | None = None
    #: an API route: refusals are JSON problems, not pages
    json: bool = False
    #: unknown, expired and revoked links all look like a missing page (nothing to learn by probing)
    hidden: bool = False


_RULES = web.AppKey("link_rules", dict[AbstractRoute, LinkRule])


def refuse(request: web.Request, kind: str) -> web.Response:
    """The reply to a link that does not lead here (`invitation-unknown`, `invitation-gone`,
    `appointment-cancelled`, `appointment-moved`, `not-found`)."""
    rule = request.app[_RULES].get(request.match_info.route, LinkRule())
    if rule.hidden:
        kind = "not-found"
    if rule.json:
        return problem(MESSAGES[kind][0], "not-found", "no such consultation")
    return error_page(kind)


@web.middleware
async def invitation_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the token once (form check, then one database read) and keep the invitation on the request."""
    rule = request.app[_RULES].get(request.match_info.route)
    if rule is None:  # not one of ours (e.g. a 404 of the sub-application)
        return await handler(request)
    try:
        invitation = await request.config_dict[app_keys.CLINIC].resolve_invitation(request.match_info["token"])
    except InvitationNotFound:
        return refuse(request, "invitation-unknown")
    except AppointmentCancelled:
        return refuse(request, "appointment-cancelled")
    except AppointmentMoved:
        return refuse(request, "appointment-moved")
    except (InvitationExpired, InvitationRevoked):
        return refuse(request, "invitation-gone")
    if rule.role is not None and invitation.role is not rule.role:
        return refuse(request, "not-found")  # no hint that it exists
    request[INVITATION] = invitation
    return await handler(request)


class InvitationRoutes:
    """The sub-application mounted at `/c/`; its routes are written from `{token}` on."""

    def __init__(self, parent: web.Application) -> None:
        self.app = web.Application(middlewares=[invitation_middleware])
        self.app[_RULES] = {}
        self._parent = parent

    def add(self, method: str, path: str, handler: Handler, rule: LinkRule = LinkRule()) -> None:
        """Add `/c{path}`; `path` starts with `/{token}`."""
        if not path.startswith("/{token}"):
            raise ValueError(f"an invitation route starts with /{{token}}: {path!r}")
        route = self.app.router.add_route(method, path, handler)
        self.app[_RULES][route] = rule

    def mount(self) -> None:
        """Attach to the parent application once every route was added.

        Handlers read the parent's state through `request.config_dict`, which looks
        in the sub-application first, then in its parent.
        """
        self._parent.add_subapp("/c/", self.app)
