"""Recording over the WebSocket: who may record, consent, the notice rule, bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import av
import pytest
from helpers.practice import Browserless
from helpers.server import running_server
from helpers.ws_client import Client, both, in_call, recording_state, wait_composed

from recorder.manifest import read_manifest
from signaling.keys import DISK, RECORDINGS


async def test_welcome_says_who_may_record(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        _, doctor, patient = await both(server)
        # recording consent is on by default (issue 19)
        assert (await doctor.recv("welcome"))["recording"] == {"allowed": True, "consent": True}
        assert (await patient.recv("welcome"))["recording"] == {"allowed": False, "consent": True}
        assert (await patient.recv("state"))["recording"] is None
        await doctor.close()
        await patient.close()


async def test_the_patient_may_not_record_and_nobody_before_the_call(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        doctor = await Client.open(demo["practitioner_link"])
        await doctor.send(type="record", on=True, id="r1")
        error = await doctor.recv("error")
        assert (error["code"], error["ref_id"]) == ("out-of-order", "r1")
        await doctor.close()
        _, doctor, patient = await in_call(server)
        await patient.send(type="record", on=True)
        assert (await patient.recv("error"))["code"] == "not-allowed"
        await patient.send(type="record", on=False)
        assert (await patient.recv("error"))["code"] == "not-allowed"
        assert not (server.config.data_path / "recordings").exists()
        await doctor.close()
        await patient.close()


@pytest.mark.parametrize(("frame", "code"), [
    ('{"type":"record"}', "bad-message"),
    ('{"type":"record","on":"yes"}', "bad-message"),
    ('{"type":"record","on":true,"by":"patient"}', "bad-message"),
    ('{"type":"recording-seen"}', "bad-message"),
    ('{"type":"recording-seen","recording":7}', "bad-message"),
    ('{"type":"recording-consent","recording":"x"}', "bad-message"),
    ('{"type":"recording-consent","recording":"x","accept":true}', "out-of-order"),
])
async def test_bad_recording_messages_get_an_error(tmp_path: Path, frame: str, code: str) -> None:
    async with running_server(tmp_path / "data", **{"recording.require_consent": False}) as server:
        _, doctor, patient = await in_call(server)
        await patient.ws.send_str(frame)
        assert (await patient.recv("error"))["code"] == code
        # the session goes on
        await patient.send(type="tracks", mic=False, camera=True, screen=False)
        assert (await doctor.recv("state"))["peer"]["tracks"]["mic"] is False
        await doctor.close()
        await patient.close()


async def test_writing_waits_for_the_other_side_to_have_seen_the_notice(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"recording.require_consent": False}) as server:
        demo, doctor, patient = await in_call(server)
        await doctor.send(type="record", on=True)
        notice = (await recording_state(patient, "notice"))["recording"]
        assert notice["by"] == "practitioner" and notice["since"] is None
        await recording_state(doctor, "notice")
        await asyncio.sleep(0.3)
        # nothing written before the patient's tab says the notice is on screen
        assert not (server.config.data_path / "recordings").exists()
        await doctor.send(type="recording-seen", recording=notice["id"])  # the starter's ack does not count
        await asyncio.sleep(0.3)
        assert not (server.config.data_path / "recordings").exists()
        await patient.send(type="recording-seen", recording=notice["id"])
        on = (await recording_state(patient, "recording"))["recording"]
        assert on["id"] == notice["id"] and on["since"]
        await recording_state(doctor, "recording")
        await doctor.send(type="record", on=True)
        assert (await doctor.recv("error"))["code"] == "out-of-order"  # already recording

        # the patient reloads: the recording is in the very first state
        await patient.close()
        patient = await Client.open(demo["patient_link"])
        assert (await patient.recv("state"))["recording"]["state"] == "recording"

        await doctor.send(type="record", on=False)
        await recording_state(patient, None)
        result = await wait_composed(server)
        folder = server.app[RECORDINGS].folder(demo["consultation_id"], notice["id"])
        manifest = read_manifest(folder)
        assert (manifest.id, manifest.state) == (notice["id"], "composed")
        # the MP4 is a document of the consultation, served to its participants by the document rules
        document = await server.clinic.get_document(str(manifest.document_id))
        assert (document.source, document.added_by, document.media_type) == ("recording", "system", "video/mp4")
        assert document.name.endswith(".mp4") and Path(result["output"]) == await server.clinic.document_path(document)
        assert not (folder / "recording.mp4").exists()  # moved, not copied
        with av.open(result["output"]) as c:
            assert c.streams.video[0].width == server.config.recording.width
        async with aiohttp.ClientSession() as http:
            url = f"{demo['practitioner_link']}/files/{document.id}"
            async with http.get(url, headers={"Range": "bytes=0-99"}) as r:
                assert r.status == 206 and r.headers["Content-Type"] == "video/mp4"
                assert len(await r.read()) == 100
            other = await server.demo()  # another consultation's link: nothing there
            async with http.get(f"{other['practitioner_link']}/files/{document.id}") as r:
                assert r.status == 404
        # listed in the patient's record, played and downloaded there by the care team
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        practitioner = Browserless(server.base_url)
        try:
            assert (await practitioner.login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
            response, page = await practitioner.get(f"/records/{consultation.patient_id}")
            assert response.status == 200 and f"/documents/{document.id}" in page and document.name in page
            response, body = await practitioner.get_bytes(f"/records/{consultation.patient_id}/documents/{document.id}")
            assert response.status == 200 and response.headers["Content-Type"] == "video/mp4" and body[4:8] == b"ftyp"
            response, _ = await practitioner.get_bytes(
                f"/records/{consultation.patient_id}/documents/{document.id}?download=1")
            assert response.headers["Content-Disposition"].startswith("attachment")
        finally:
            await practitioner.close()
        # audited with ids only: who started and stopped which recording of which consultation
        audit = [e for e in await server.clinic.practice.audit_export() if e.action.startswith("recording.")]
        assert [(e.action, e.actor_kind, e.actor_id, e.object_id, e.consultation_id, e.patient_id) for e in audit] == [
            ("recording.start", "practitioner", consultation.practitioner_id, notice["id"], consultation.id, consultation.patient_id),
            ("recording.stop", "practitioner", consultation.practitioner_id, notice["id"], consultation.id, consultation.patient_id),
        ]
        await doctor.close()
        await patient.close()


async def test_with_the_other_side_away_the_notice_sent_to_every_tab_is_enough(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"recording.require_consent": False}) as server:
        _, doctor, patient = await in_call(server)
        await patient.close()
        await doctor.state(connected=False)
        await doctor.send(type="record", on=True)
        await recording_state(doctor, "recording")
        await doctor.send(type="record", on=False)
        await recording_state(doctor, None)
        await wait_composed(server)
        await doctor.close()


async def test_consent_refused_means_no_recording_and_the_practitioner_is_told(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:  # consent is asked by default
        demo, doctor, patient = await in_call(server)
        await doctor.send(type="record", on=True)
        ask = (await recording_state(patient, "consent"))["recording"]
        await doctor.send(type="recording-consent", recording=ask["id"], accept=True)
        assert (await doctor.recv("error"))["code"] == "not-allowed"  # not one's own consent
        await patient.send(type="recording-consent", recording="not-this-one", accept=True)
        assert (await patient.recv("error"))["code"] == "out-of-order"
        await patient.send(type="recording-consent", recording=ask["id"], accept=False)
        refused = await doctor.recv("recording-refused")
        assert refused["id"] == ask["id"]
        await recording_state(doctor, None)
        await asyncio.sleep(0.3)
        assert not (server.config.data_path / "recordings").exists()
        assert not [e for e in await server.clinic.practice.audit_export() if e.action.startswith("recording.")]

        # asked again and accepted: notice, ack, recording
        await doctor.send(type="record", on=True)
        ask = (await recording_state(patient, "consent"))["recording"]
        await patient.send(type="recording-consent", recording=ask["id"], accept=True)
        await recording_state(patient, "notice")
        await patient.send(type="recording-seen", recording=ask["id"])
        await recording_state(doctor, "recording")
        await doctor.send(type="hangup")  # the end of the call ends the recording
        await recording_state(patient, None)
        await wait_composed(server)
        audit = [(e.action, e.actor_kind) for e in await server.clinic.practice.audit_export() if e.action.startswith("recording.")]
        assert audit == [("recording.start", "practitioner"), ("recording.stop", "system")]
        # both answers are in the consent ledger, after the teleconsultation consent
        consultation = await server.clinic.get_consultation(demo["consultation_id"])
        ledger = [(e.subject, e.actor, e.decision) for e in await server.clinic.consents_of_patient(consultation.patient_id)]
        assert ledger == [("teleconsultation", "patient", "given"), ("recording", "patient", "refused"),
                          ("recording", "patient", "given")]
        await doctor.close()
        await patient.close()


async def test_a_recording_stops_when_the_disk_runs_short_and_keeps_what_it_wrote(tmp_path: Path) -> None:
    # the notice path only: the patient's consent to recording is the consent tests' concern
    async with running_server(tmp_path / "data", **{"recording.require_consent": False}) as server:
        demo, doctor, patient = await in_call(server)
        await doctor.send(type="record", on=True)
        notice = (await recording_state(patient, "notice"))["recording"]
        await patient.send(type="recording-seen", recording=notice["id"])
        await recording_state(doctor, "recording")
        # the disk "fills": a floor above the free space
        server.app[DISK].min_free_bytes = 10**18
        for side in (doctor, patient):
            await recording_state(side, None)
            message = await side.recv("chat-message")
            while not message.get("key", "").startswith("recording-stopped"):  # skip "recording-started"
                message = await side.recv("chat-message")
            assert (message["kind"], message["key"]) == ("system", "recording-stopped-disk-full")
        result = await wait_composed(server)  # what was written is kept and composed
        manifest = read_manifest(server.app[RECORDINGS].folder(demo["consultation_id"], notice["id"]))
        assert manifest.state == "composed" and Path(result["output"]).exists()
        await doctor.send(type="record", on=True, id="again")
        error = await doctor.recv("error")
        assert (error["code"], error["ref_id"]) == ("disk-full", "again")
        await doctor.close()
        await patient.close()
