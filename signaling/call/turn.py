"""The STUN/TURN servers a browser gets, with time-limited TURN credentials.

A server configured with a `secret` uses the TURN REST convention (coturn's
`use-auth-secret` + `static-auth-secret`): the username is
`"<expiry unix time>:<user id>"` and the credential is
`base64(HMAC-SHA1(secret, username))`. The TURN server recomputes the
credential from the username and refuses it once the expiry has passed, so
the shared secret never leaves this server and a leaked credential dies on
its own.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from ..config import IceConfig


def turn_rest_credentials(secret: str, user_id: str, expires_at: float) -> tuple[str, str]:
    """(username, credential) valid until `expires_at` (unix seconds) for `secret`."""
    username = f"{int(expires_at)}:{user_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers_for(config: IceConfig, user_id: str, now: float) -> list[dict[str, Any]]:
    """The browser's `iceServers`: `{urls, username?, credential?}`, only non-empty keys."""
    servers: list[dict[str, Any]] = []
    for server in config.servers:
        if server.secret:
            username, credential = turn_rest_credentials(server.secret, user_id, now + config.turn_credential_ttl)
        else:
            username, credential = server.username, server.credential
        entry: dict[str, Any] = {"urls": list(server.urls)}
        if username:
            entry["username"] = username
        if credential:
            entry["credential"] = credential
        servers.append(entry)
    return servers
