"""[sfu] workers = 2 in real Chromium: the call's media worker is killed while recording, the pictures come
back by themselves, the recording goes on (a new part) and the notice never left the pages."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

from helpers.call_page import frames_decoded, in_call, more_frames, shows, wait_for
from helpers.chat_page import MESSAGES
from helpers.server import running_server
from playwright.async_api import expect

from clinic import Role
from recorder.manifest import read_manifest
from sfu.remote import RemoteRoom
from signaling.keys import MONITOR, RECORDINGS
from signaling.metrics import Metrics


async def test_killing_the_calls_worker_brings_both_pictures_back_and_keeps_the_chat(
        tmp_path: Path, open_page: Any) -> None:
    settings = {"sfu.workers": 2, "recording.width": 640, "recording.height": 240, "recording.require_consent": False}
    async with running_server(tmp_path / "data", **settings) as server:
        doctor, patient = await in_call(server, open_page)
        await wait_for(lambda: shows(doctor, "blue"))
        await wait_for(lambda: shows(patient, "red"))
        (hub,) = server.hubs._hubs.values()
        room = hub.room
        assert isinstance(room, RemoteRoom) and room.worker is not None and room.worker.pid is not None
        assert room.worker.pid != os.getpid()
        # recording runs in the call's worker: offered and started as with one process
        assert hub.recording.allowed(Role.PRACTITIONER)
        await doctor.get_by_test_id("record-toggle").click()
        await expect(patient.get_by_test_id("recording-indicator")).to_have_attribute("data-state", "recording")
        await wait_for(lambda: _async(hub.recording.state == "recording"))
        recording_id = hub.recording.id
        await asyncio.sleep(2.0)  # the part the kill will cut has pictures and sound
        # a chat line before the kill
        await patient.get_by_test_id("chat-toggle").click()
        await patient.get_by_test_id("chat-input").fill("avant la panne")
        await patient.get_by_test_id("chat-send").click()
        text = patient.locator(f"{MESSAGES} .text")
        await expect(text.filter(has_text="avant la panne")).to_have_count(1)
        chat_before = await text.all_text_contents()

        dead = room.worker.pid
        killed_at = time.monotonic()
        os.kill(dead, signal.SIGKILL)
        # pictures stop (the worker is gone), then come back through the new worker, nobody pressing anything:
        # wait for a picture decoded after the restart: the worker's PID changed and both sides show colour
        await wait_for(lambda: _async(room.worker is not None and room.worker.pid not in (None, dead)))
        await wait_for(lambda: _both_connected(hub), timeout=30.0)
        # live pictures, not the last frame the video elements kept: frames keep being decoded
        doctor_frames, patient_frames = await frames_decoded(doctor), await frames_decoded(patient)
        await wait_for(lambda: more_frames(doctor, doctor_frames), timeout=30.0)
        await wait_for(lambda: more_frames(patient, patient_frames), timeout=30.0)
        await wait_for(lambda: shows(doctor, "blue"), timeout=30.0)
        await wait_for(lambda: shows(patient, "red"), timeout=30.0)
        print(f"\nworker killed -> both pictures back in {time.monotonic() - killed_at:.2f} s")
        # /stats and /metrics: the participants' counters come from the worker, one line per worker
        snapshot = await server.app[MONITOR].collect()
        (live,) = snapshot["rooms"]
        assert sorted(p["role"] for p in live["participants"]) == ["patient", "practitioner"]
        assert all(sum(s["packets"] for s in p["up"].values()) > 0 for p in live["participants"])
        workers = {w["worker"]: w for w in snapshot["workers"]}
        assert sorted(workers) == [0, 1] and sum(w["restarts"] for w in workers.values()) == 1
        assert workers[room.worker.index]["rooms"] == 1 and workers[room.worker.index]["cpu_seconds"] > 0
        metrics = Metrics()
        metrics.observe(snapshot)
        exposition = metrics.exposition().decode()
        assert f'teleconsult_worker_rooms{{worker="{room.worker.index}"}} 1.0' in exposition
        assert "teleconsult_worker_cpu_seconds_total" in exposition
        # the chat, in the signaling process, is untouched
        assert await text.all_text_contents() == chat_before
        assert hub.room is room and not room.closed
        # the recording went on: same recording for the pages, the notice still on both sides
        assert hub.recording.state == "recording" and hub.recording.id == recording_id
        for page in (doctor, patient):
            await expect(page.get_by_test_id("recording-indicator")).to_have_attribute("data-state", "recording")
        await doctor.get_by_test_id("record-toggle").click()
        await wait_for(lambda: _async(hub.recording.state == "off"))
        # two parts, each composed into a document: what the dead worker wrote, and what the new one wrote
        service = server.app[RECORDINGS]
        await wait_for(lambda: _async(len(service.composed) == 2), timeout=90.0)
        folders = sorted((server.config.data_path / "recordings").glob("*/*"))
        manifests = [read_manifest(f) for f in folders]
        assert len(manifests) == 2 and recording_id in {m.id for m in manifests}
        assert all(m.state == "composed" and m.document_id for m in manifests), manifests
        assert all({(t.role, t.source) for t in m.tracks} >= {("practitioner", "camera"), ("patient", "camera")}
                   for m in manifests), manifests


async def _async(value: bool) -> bool:
    return value


async def _both_connected(hub: Any) -> bool:
    return len(hub.participants) == 2 and all(p.media_state == "connected" for p in hub.participants.values())
