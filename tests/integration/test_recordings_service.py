"""The server's recordings: recovery at start, retention, with a real app, clinic and worker process."""

from __future__ import annotations

import datetime
from pathlib import Path

import av
import pytest
from helpers.server import running_server
from helpers.synthetic import opus_tone, vp8_frames, write_recording
from helpers.ws_client import in_call, recording_state, wait_composed

from clinic import NotFound
from recorder.manifest import read_manifest, write_manifest
from recorder.writer import TrackKey
from signaling.keys import RECORDINGS


async def test_a_recording_left_unfinished_is_composed_and_stored_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data) as server:  # a consultation to attach it to
        demo = await server.demo()
    folder = data / "recordings" / demo["consultation_id"] / "r"
    folder.mkdir(parents=True)
    tracks = {
        TrackKey("a", "practitioner", "camera", "video"): (0.0, vp8_frames("red", 30)),
        TrackKey("b", "patient", "mic", "audio"): (0.2, [(p, True) for p in opus_tone(440, 100)]),
    }
    manifest = write_recording(folder, tracks, [], 2.0)
    # what a SIGKILL leaves: still "recording", no duration
    manifest.state, manifest.duration, manifest.consultation_id = "recording", None, demo["consultation_id"]
    write_manifest(folder, manifest)

    async with running_server(data, **{"recording.width": 320, "recording.height": 120}) as server:
        result = await wait_composed(server)
        stored = read_manifest(folder)
        assert stored.state == "composed" and stored.document_id
        document = await server.clinic.get_document(stored.document_id)
        assert document.consultation_id == demo["consultation_id"] and document.source == "recording"
        with av.open(result["output"]) as c:
            assert abs(c.duration / 1e6 - 2.0) < 0.3  # from the tracks themselves
            assert c.streams.video[0].width == 320 and len(c.streams.audio) == 1


async def test_retention_deletes_expired_recordings_and_their_documents(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"recording.retention_days": 30,
                                                    "recording.require_consent": False}) as server:
        demo, doctor, patient = await in_call(server)
        await doctor.send(type="record", on=True)
        rec = (await recording_state(patient, "notice"))["recording"]
        await patient.send(type="recording-seen", recording=rec["id"])
        await recording_state(doctor, "recording")
        await doctor.send(type="record", on=False)
        await recording_state(doctor, None)
        await wait_composed(server)
        service = server.app[RECORDINGS]
        folder = service.folder(demo["consultation_id"], rec["id"])
        document_id = read_manifest(folder).document_id
        assert document_id is not None

        now = datetime.datetime.now(datetime.UTC)
        assert await service.sweep(now + datetime.timedelta(days=29)) == 0  # not yet
        assert folder.exists()
        assert await service.sweep(now + datetime.timedelta(days=31)) == 1
        assert not folder.exists()
        with pytest.raises(NotFound):
            await server.clinic.get_document(document_id)
        deleted = [e for e in await server.clinic.practice.audit_export() if e.action == "recording.delete"]
        assert [(e.actor_kind, e.object_id, e.document_id, e.consultation_id) for e in deleted] == [
            ("system", rec["id"], document_id, demo["consultation_id"])]
        await doctor.close()
        await patient.close()


async def test_retention_zero_keeps_everything(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        assert await server.app[RECORDINGS].sweep(datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC)) == 0
