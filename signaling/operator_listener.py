"""The operator's own listener: metrics, stats, mail status, liveness and readiness.

It runs beside the public server on `[operator] host:port` (loopback by
default) so that nothing behind the reverse proxy can reach it: the proxy's
requests all come from 127.0.0.1, so an address allow-list on the public
port would let the whole internet in.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from clinic.mail import STATES

from . import keys as app_keys
from .health import Readiness
from .metrics import CONTENT_TYPE, Metrics

logger = logging.getLogger(__name__)

PUBLIC = web.AppKey("public_app", web.Application)
METRICS = web.AppKey("metrics", Metrics)
READINESS = web.AppKey("readiness", Readiness)


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[PUBLIC][app_keys.MONITOR].snapshot)


async def mail_status(request: web.Request) -> web.Response:
    """The mail queue's state (ids and counters only: no address, no text)."""
    messages = await request.app[PUBLIC][app_keys.CLINIC].practice.mail_recent()
    counts = {state: sum(1 for m in messages if m.state == state) for state in STATES}
    return web.json_response({"counts": counts, "messages": [m.status_json() for m in messages]})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    report = await request.app[READINESS].report()
    return web.json_response(report, status=503 if report["failed"] else 200)


def operator_app(public: web.Application, metrics_: Metrics, readiness: Readiness) -> web.Application:
    app = web.Application()
    app[PUBLIC] = public
    app[METRICS] = metrics_
    app[READINESS] = readiness
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/stats", stats)
    app.router.add_get("/mail/status", mail_status)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def operator_listener(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx of the public app, after the one that opens storage: serve the operator's port."""
    config = app[app_keys.CONFIG]
    found = Metrics()
    app[app_keys.MONITOR].listeners.append(found.observe)
    readiness = Readiness(app[app_keys.CLINIC], app[app_keys.DISK], app[app_keys.MAILER], app[app_keys.RECORDINGS],
                          datetime.timedelta(minutes=config.operator.mail_stuck_minutes))
    runner = web.AppRunner(operator_app(app, found, readiness), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, config.operator.host, config.operator.port)
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"operator listener on {config.operator.host}:{config.operator.port}: "
                                 f"{exc.strerror}") from None
    host, port = runner.addresses[0][:2]
    app[app_keys.OPERATOR_URL] = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    logger.info("operator listener on %s", app[app_keys.OPERATOR_URL])
    yield
    await runner.cleanup()

