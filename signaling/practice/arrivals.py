"""The day's live statuses pushed to the practitioner's pages (Server-Sent Events), arrivals included.

`GET /day/events?day=YYYY-MM-DD[&patient=ID]` streams `status` events (every consultation
of that day of the logged-in practitioner, optionally one patient's: `{id: {status,
readiness}}`) whenever one changes, `ping` events while nothing does, and an `arrival` event (`{"consultation": id}`)
when a patient enters the waiting room.  This node's hubs ring a bell on every change
(signaling/call/bell.py), so a local arrival is pushed at once; consultations served by
other nodes are read from the cluster's presence, which they publish at each heartbeat,
so the stream also looks every `[cluster] heartbeat_seconds` when there is a cluster.
A stream lasts at most `STREAM_SECONDS`; the browser's EventSource reconnects by itself.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import time
import zoneinfo
from typing import Any, Final

from aiohttp import web

from clinic.models import Consultation

from .. import keys as app_keys
from .. import nodes
from .auth import SESSION_COOKIE, current_session

#: the longest a stream stays open (EventSource reconnects): bounds every loop, re-checks the login
STREAM_SECONDS: Final = 300.0
#: without a cluster nothing changes unannounced: the wait is only a keep-alive
KEEPALIVE_SECONDS: Final = 15.0


def tz_of(request: web.Request) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(request.config_dict[app_keys.CONFIG].practice.timezone)


def live_status(request: web.Request, consultation: Consultation,
                elsewhere: dict[str, nodes.Status]) -> tuple[str, str | None]:
    """absent / waiting-room / in-call / ended / closed / cancelled, and the waiting patient's test verdict."""
    if consultation.cancelled_at is not None:
        return "cancelled", None
    hub = request.config_dict[app_keys.HUBS].find(consultation.id)
    if hub is None and consultation.id in elsewhere:  # served by another node
        return elsewhere[consultation.id]
    return nodes.hub_status(hub, consultation.state)


async def rows_elsewhere(request: web.Request, found: list[tuple[Consultation, Any]]) -> dict[str, nodes.Status]:
    return await nodes.elsewhere(request.config_dict.get(app_keys.CLUSTER), request.config_dict[app_keys.HUBS],
                                 (c for c, _ in found))


def day_of(request: web.Request) -> tuple[datetime.date, datetime.datetime, datetime.datetime]:
    tz = tz_of(request)
    try:
        day = datetime.date.fromisoformat(request.query.get("day", ""))
    except ValueError:
        day = datetime.datetime.now(tz).date()
    start = datetime.datetime.combine(day, datetime.time(), tz)
    return day, start, datetime.datetime.combine(day + datetime.timedelta(days=1), datetime.time(), tz)


async def statuses_of_day(request: web.Request, practitioner_id: str,
                          patient_id: str | None = None) -> dict[str, dict[str, Any]]:
    """`{consultation id: {status, readiness}}` for the requested day (`?day=`), one patient's or all."""
    _, start, end = day_of(request)
    found = await request.config_dict[app_keys.CLINIC].practice.day(practitioner_id, start, end)
    if patient_id is not None:
        found = [(c, p) for c, p in found if p.id == patient_id]
    elsewhere = await rows_elsewhere(request, found)
    data: dict[str, dict[str, Any]] = {}
    for consultation, _ in found:
        status, readiness = live_status(request, consultation, elsewhere)
        data[consultation.id] = {"status": status, "readiness": readiness}
    return data


def arrivals(before: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> list[str]:
    """The consultations whose patient has just entered the waiting room."""
    return [cid for cid, item in now.items()
            if item["status"] == "waiting-room" and before.get(cid, {}).get("status") != "waiting-room"]


def _event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def day_events(request: web.Request) -> web.StreamResponse:
    session = await current_session(request)
    if session is None:
        return web.json_response({"error": "login"}, status=401)
    token = request.cookies.get(SESSION_COOKIE, "")
    practice = request.config_dict[app_keys.CLINIC].practice
    bell = request.config_dict[app_keys.HUBS].changes
    cluster = request.config_dict.get(app_keys.CLUSTER)
    pause = request.config_dict[app_keys.CONFIG].cluster.heartbeat_seconds if cluster else KEEPALIVE_SECONDS
    patient = request.query.get("patient") or None
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    if bell.closed:
        return response
    known = await statuses_of_day(request, session.practitioner.id, patient)
    await response.write(_event("status", known))
    deadline = time.monotonic() + STREAM_SECONDS
    try:
        while time.monotonic() < deadline:
            rung = await bell.wait(min(pause, max(0.0, deadline - time.monotonic())))
            if bell.closed:
                break
            if rung:
                await asyncio.sleep(0.05)  # a join rings several times: one look for them all
            if await practice.session(token) is None:
                break  # logged out meanwhile
            now = await statuses_of_day(request, session.practitioner.id, patient)
            if now != known:
                for cid in arrivals(known, now):
                    await response.write(_event("arrival", {"consultation": cid}))
                await response.write(_event("status", now))
                known = now
            elif not rung:
                await response.write(_event("ping", {}))  # tells the page the stream is alive
    except (ConnectionResetError, ConnectionError):
        pass  # the page went away
    return response
