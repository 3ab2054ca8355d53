"""Issue 20 item 4: a logged-in practitioner joins from the day list without minting a new invitation.

The day list's join (POST …/join, GET …/call) hands out a join pass bound to the login
session; the links already handed out (the demo's practitioner and patient links) keep
working, the pass opens the call's WebSocket as the practitioner, and dies with the session.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from helpers.practice import Browserless
from helpers.server import running_server
from helpers.ws_client import Client

PASSWORD = "correct horse battery"


async def test_join_pass_leaves_the_links_working_and_dies_with_the_session(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        base = server.base_url
        consultation_id = demo["consultation_id"]
        doctor, stranger, anonymous = Browserless(base), Browserless(base), Browserless(base)
        try:
            assert (await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
            await server.clinic.add_practitioner("other@example.org", PASSWORD, "Dr Autre")
            assert (await stranger.login("other@example.org", PASSWORD)).status == 303

            # the GET route and the day list's button both give a pass, twice in a row
            response, _ = await doctor.get(f"/consultations/{consultation_id}/call")
            assert response.status == 303
            first = response.headers["Location"]
            response, _ = await doctor.post(f"/consultations/{consultation_id}/join", {}, csrf_from="/")
            assert response.status == 303
            second = response.headers["Location"]
            assert first.startswith("/c/") and second.startswith("/c/") and first != second
            practitioner_token = demo["practitioner_link"].rsplit("/", 1)[1]
            assert practitioner_token not in (first, second)

            # every link opens the room: both passes, the demo's practitioner and patient links
            for path in (first, second, demo["practitioner_link"].removeprefix(base),
                         demo["patient_link"].removeprefix(base)):
                response, page = await anonymous.get(path)
                assert response.status == 200, path
                assert 'data-testid="join"' in page or "room" in page

            # the pass is the practitioner's way in: the WebSocket welcomes it as the practitioner
            by_pass = await Client.open(base + second)
            assert (await by_pass.recv("welcome"))["role"] == "practitioner"
            await by_pass.close()
            by_link = await Client.open(demo["practitioner_link"])
            assert (await by_link.recv("welcome"))["role"] == "practitioner"
            await by_link.close()

            # another practitioner's consultation: the same 404 as an unknown one; no session: login
            response, _ = await stranger.get(f"/consultations/{consultation_id}/call")
            assert response.status == 404
            response, _ = await anonymous.get(f"/consultations/{consultation_id}/call")
            assert response.status == 303
            assert response.headers["Location"].startswith("/login?next=")

            # the audit says who joined; no invitation was rewritten
            events = await server.clinic.practice.audit_of_patient(
                (await server.clinic.get_consultation(consultation_id)).practitioner_id,
                (await server.clinic.get_consultation(consultation_id)).patient_id)
            assert sum(e.action == "consultation.join" for e in events) == 2

            # logout ends the passes, not the invitation links
            response, _ = await doctor.post("/logout", {}, csrf_from="/")
            assert response.status == 303
            response, _ = await anonymous.get(second)
            assert response.status == 404
            response, _ = await anonymous.get(demo["practitioner_link"].removeprefix(base))
            assert response.status == 200
            # a revoked invitation takes its passes along
            assert (await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
            response, _ = await doctor.get(f"/consultations/{consultation_id}/call")
            third = response.headers["Location"]
            invitation = await server.clinic.resolve_invitation(third.removeprefix("/c/"))
            assert invitation.expires_at <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=2)
            await server.clinic.revoke_invitation(invitation.id)
            response, _ = await anonymous.get(third)
            assert response.status == 404
        finally:
            for client in (doctor, stranger, anonymous):
                await client.close()
