"""The recording lines of the worker channel, against a real `python -m recorder.worker` process (no media)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from recorder.manifest import read_manifest
from sfu import IcePolicy, SfuOptions
from sfu.remote import Worker, WorkerPool


async def manifest_of(folder: Path) -> str:
    """The manifest's state once the worker's disk thread wrote it."""
    for _ in range(100):  # bounded: 10 s
        if (folder / "manifest.json").exists():
            return read_manifest(folder).state
        await asyncio.sleep(0.1)
    raise AssertionError(f"no manifest in {folder}")


async def closed_event(pool: WorkerPool, recording_id: str) -> dict[str, Any]:
    got: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def on_closed(worker: Worker, message: dict[str, Any]) -> None:
        if message["recording"] == recording_id and not got.done():
            got.set_result(message)

    pool.on("recording-closed", on_closed)
    try:
        return await asyncio.wait_for(got, 30.0)
    finally:
        pool.remove_listener("recording-closed", on_closed)


async def test_record_then_stop_writes_the_folder_and_answers_with_its_manifest(tmp_path: Path) -> None:
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41600, 41609), 1, module="recorder.worker")
    await pool.start()
    try:
        (worker,) = pool.workers
        assert worker.channel is not None
        folder = tmp_path / "c1" / "r1"
        tracks = {"mic": True, "camera": False, "screen": False}
        worker.channel.send("record", recording="r1", consultation="c1", folder=str(folder), room="c1",
                            tracks={"patient": tracks})
        worker.channel.send("record-tracks", recording="r1", role="patient", tracks={**tracks, "camera": True})
        info = await worker.info()  # answered after the lines before it were applied
        assert info["rooms"] == 1  # the recorder's room, made empty: the first participant will join it
        assert await manifest_of(folder) == "recording"
        waiting = asyncio.ensure_future(closed_event(pool, "r1"))
        await asyncio.sleep(0)
        worker.channel.send("record-stop", recording="r1")
        message = await waiting
        assert message["error"] is None and message["dropped"] == 0
        assert message["manifest"]["id"] == "r1" and message["manifest"]["state"] == "stopped"
        assert [(e["role"], e["camera"]) for e in message["manifest"]["events"]] == [("patient", False),
                                                                                     ("patient", True)]
        assert read_manifest(folder).state == "stopped"
    finally:
        await pool.close()


async def test_a_worker_told_to_exit_completes_its_recordings_first(tmp_path: Path) -> None:
    """The server stopping (channel EOF): the recorder stops, the manifest says "stopped" (composed at the
    server's next start, RecordingService.recover), before the worker process exits."""
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41610, 41619), 1, module="recorder.worker",
                      extra={"key_file": None})
    await pool.start()
    (worker,) = pool.workers
    assert worker.channel is not None
    folder = tmp_path / "c2" / "r2"
    worker.channel.send("record", recording="r2", consultation="c2", folder=str(folder), room="c2", tracks={})
    assert await manifest_of(folder) == "recording"
    await pool.close()
    assert worker.process is not None and worker.process.returncode == 0
    manifest = read_manifest(folder)
    assert manifest.state == "stopped" and manifest.duration is not None
