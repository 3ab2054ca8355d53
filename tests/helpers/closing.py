"""The closing page's API as a script uses it: import documents, close the act."""

from __future__ import annotations

import io
import os
import urllib.parse
from typing import Any

import aiohttp

from clinic import ConsultationState, Stage
from helpers.practice import (
    Browserless,
)
from helpers.server import Running


def pdf_bytes(size: int = 20000) -> bytes:
    """A file that sniffs as PDF, different at each call."""
    return b"%PDF-1.4\n%" + os.urandom(size) + b"\n%%EOF\n"


async def ended_consultation(server: Running) -> tuple[dict[str, Any], str]:
    """The demo consultation, moved to 'ended' as the practitioner's hang-up does; returns (demo, token)."""
    demo = await server.demo()
    await server.clinic.update_consultation(demo["consultation_id"], state=ConsultationState.ENDED,
                                            practitioner_stage=Stage.ENDED, patient_stage=Stage.ENDED)
    return demo, demo["practitioner_link"].rsplit("/", 1)[1]


async def upload(c: Browserless, token: str, name: str, data: bytes, csrf: str) -> aiohttp.ClientResponse:
    async with c.session.post(f"{c.base_url}/c/{token}/closing/documents?name={urllib.parse.quote(name)}",
                              data=io.BytesIO(data), headers={
        "X-CSRF-Token": csrf, "Content-Type": "application/octet-stream",
    }) as r:
        await r.read()
        return r


async def close(c: Browserless, token: str, csrf: str) -> tuple[int, dict[str, Any]]:
    async with c.session.post(f"{c.base_url}/c/{token}/closing/close", headers={"X-CSRF-Token": csrf}) as r:
        return r.status, await r.json()


async def closing_csrf(c: Browserless, token: str) -> str:
    _, page = await c.get(f"/c/{token}/closing")
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


async def closed_with_link_no_wait(server: Running) -> None:
    _, token = await ended_consultation(server)
    doctor = Browserless(server.base_url)
    try:
        csrf = await closing_csrf(doctor, token)
        assert (await upload(doctor, token, "cr.pdf", pdf_bytes(), csrf)).status == 201
        assert (await close(doctor, token, csrf))[0] == 200
    finally:
        await doctor.close()
