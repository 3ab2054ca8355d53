"""A read timeout on request bodies: a body trickling in is cut (slowloris).

aiohttp waits for a request body as long as the client keeps the connection open:
40 bodies sent at 1 byte per 5 s held 80 descriptors for as long as they liked.
Here a body must arrive at `[http] body_min_bytes_per_second` on average once
`body_grace_seconds` have passed, or the connection is closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from . import keys as app_keys
from .accesslog import route_name

logger = logging.getLogger(__name__)

#: Seconds between two looks at a body's progress.
CHECK_INTERVAL: Final = 0.5


def too_slow(received: int, elapsed: float, *, grace: float, min_rate: float) -> bool:
    """Whether `received` bytes after `elapsed` seconds is below the pace asked."""
    return elapsed > grace and received < min_rate * (elapsed - grace)


async def _watch(request: web.Request, grace: float, min_rate: float) -> None:
    content = request.content
    loop = asyncio.get_running_loop()
    started = loop.time()
    while not content.is_eof():
        await asyncio.sleep(CHECK_INTERVAL)
        # bytes waiting in the buffer mean the handler is slow, not the client: the
        # server stops reading (backpressure), which must not count against the client
        if getattr(content, "_size", 0) > 0:
            started = loop.time() - grace  # restart the pace from here
            continue
        if too_slow(content.total_bytes, loop.time() - started, grace=grace, min_rate=min_rate):
            logger.info("request body too slow on %s %s: connection closed", request.method, route_name(request))
            if request.transport is not None:
                request.transport.close()
            return


@web.middleware
async def body_deadline(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Run the handler while a watchdog cuts a body that arrives too slowly."""
    if not request.body_exists:
        return await handler(request)
    http = request.config_dict[app_keys.CONFIG].http
    watchdog = asyncio.create_task(_watch(request, http.body_grace_seconds, http.body_min_bytes_per_second))
    try:
        return await handler(request)
    finally:
        watchdog.cancel()
