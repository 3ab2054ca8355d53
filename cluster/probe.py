"""Can this node reach its Redis? (`teleconsult check-config`)."""

from __future__ import annotations

import urllib.parse

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import ClusterUnavailable

#: Seconds to wait for Redis when connecting and per command.
TIMEOUT_S = 5.0


def where(url: str) -> str:
    """host:port of a Redis URL, for messages (never the password)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


async def probe(url: str) -> str:
    """Connect once and return the server version; ClusterUnavailable if that fails."""
    client = aioredis.from_url(url, decode_responses=True, socket_connect_timeout=TIMEOUT_S,
                               socket_timeout=TIMEOUT_S)
    try:
        info = await client.info("server")
    except (RedisError, OSError) as exc:
        raise ClusterUnavailable(f"cannot use Redis at {where(url)}: {exc}") from exc
    finally:
        await client.aclose()
    return str(info.get("redis_version", "unknown"))
