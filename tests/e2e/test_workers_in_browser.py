"""[sfu] workers = 2 in real Chromium: the call's media worker is killed, the pictures come back by themselves."""

from __future__ import annotations

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
from sfu.remote import RemoteRoom
from signaling.keys import MONITOR
from signaling.metrics import Metrics


async def test_killing_the_calls_worker_brings_both_pictures_back_and_keeps_the_chat(
        tmp_path: Path, open_page: Any) -> None:
    async with running_server(tmp_path / "data", **{"sfu.workers": 2}) as server:
        doctor, patient = await in_call(server, open_page)
        await wait_for(lambda: shows(doctor, "blue"))
        await wait_for(lambda: shows(patient, "red"))
        (hub,) = server.hubs._hubs.values()
        room = hub.room
        assert isinstance(room, RemoteRoom) and room.worker is not None and room.worker.pid is not None
        assert room.worker.pid != os.getpid()
        # no recorder runs in a worker yet: recording is not offered (docs/operations.md)
        assert not hub.recording.allowed(Role.PRACTITIONER)
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


async def _async(value: bool) -> bool:
    return value


async def _both_connected(hub: Any) -> bool:
    return len(hub.participants) == 2 and all(p.media_state == "connected" for p in hub.participants.values())
