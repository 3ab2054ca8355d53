"""Issue 20 item 3: the day's statuses and arrivals pushed to the practitioner (GET /day/events, SSE)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from helpers.event_stream import next_event
from helpers.practice import Browserless
from helpers.server import running_server
from helpers.ws_client import Client

PASSWORD = "correct horse battery"


async def test_an_arrival_is_pushed_to_its_practitioner_only_and_streams_end_with_the_server(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        consultation = demo["consultation_id"]
        doctor, other = Browserless(server.base_url), Browserless(server.base_url)
        patient = None
        try:
            assert (await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
            await server.clinic.add_practitioner("other@example.org", PASSWORD, "Dr Autre")
            assert (await other.login("other@example.org", PASSWORD)).status == 303
            stream = await doctor.session.get(server.base_url + "/day/events")
            assert stream.status == 200 and stream.headers["Content-Type"] == "text/event-stream"
            assert (await next_event(stream, "status"))[consultation]["status"] == "absent"
            patient_id = (await server.clinic.get_consultation(consultation)).patient_id
            # the record page's stream: that patient's consultations only
            own = await doctor.session.get(server.base_url + f"/day/events?patient={patient_id}")
            assert list(await next_event(own, "status")) == [consultation]
            nobody = await doctor.session.get(server.base_url + "/day/events?patient=someone-else")
            assert await next_event(nobody, "status") == {}
            nobody.close()
            strangers = await other.session.get(server.base_url + "/day/events")
            assert await next_event(strangers, "status") == {}

            patient = await Client.open(demo["patient_link"])
            assert await next_event(stream, "arrival", timeout=5) == {"consultation": consultation}
            assert (await next_event(stream, "status"))[consultation]["status"] == "waiting-room"
            assert await next_event(own, "arrival", timeout=5) == {"consultation": consultation}
            # the other practitioner hears nothing of it
            with pytest.raises(TimeoutError):
                await next_event(strangers, "arrival", timeout=1)
            # a page that comes later is shown the status, not an arrival of the past
            late = await doctor.session.get(server.base_url + "/day/events")
            assert (await next_event(late, "status"))[consultation]["status"] == "waiting-room"
            late.close()
            await patient.close()
            patient = None
            assert (await next_event(stream, "status"))[consultation]["status"] == "absent"
        finally:
            if patient is not None:
                await patient.close()
    # leaving `running_server` stopped the server: the open streams ended with it, not at their timeout
    assert await asyncio.wait_for(stream.content.read(), 5) is not None
    for client in (doctor, other):
        await client.close()
