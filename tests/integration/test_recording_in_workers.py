"""Recording inside media workers ([sfu] workers = 2): the recorder runs in the worker holding the room.

Real aiortc peers, real worker processes (`python -m recorder.worker`), the
server's RecordingService composing: the composite equals the in-process one
(tracks, duration, pictures, voices), tracks are sealed with the same key file,
and a worker killed mid-recording keeps what it wrote (composed) while the
recording goes on in the new worker as a new part.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from helpers.media_peers import Peer, connect

from recorder import Recorder
from recorder.manifest import read_manifest
from recorder.remote import RemoteRecorder
from sealing import Keyring, generate_key, is_sealed, open_file
from sfu import IcePolicy, Room, SfuOptions
from sfu.remote import RemoteParticipant, RemoteRoom, WorkerPool
from signaling.config import RecordingConfig
from signaling.recording_service import RecordingService

from test_recorder import colour, rgb_at, strength, tone_peer
from test_recorder_lipsync import (
    HEIGHT as LIP_HEIGHT,
    OUT_FPS,
    SECONDS,
    TOLERANCE,
    WIDTH as LIP_WIDTH,
    av_offsets,
    known_rtp_origin,  # noqa: F401 (a fixture)
    lip_sync_publisher,
)

WIDTH, HEIGHT, FPS = 320, 120, 15
TRACKS = {"mic": True, "camera": True, "screen": False}


def service_for(root: Path, keyring: Keyring | None, audits: list[tuple[str, str, str | None]]) -> RecordingService:
    service = RecordingService(RecordingConfig(width=WIDTH, height=HEIGHT, fps=FPS), root, keyring)

    async def audit(action: str, consultation_id: str, recording_id: str, role: str | None,
                    document_id: str | None) -> None:
        audits.append((action, recording_id, role))

    service.audit = audit
    return service


async def composed(service: RecordingService, *names: str) -> None:
    for _ in range(1200):  # bounded: 120 s (the composing process starts on first use)
        if all(n in service.composed for n in names):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not composed: {set(names) - set(service.composed)}")


def composite(output: str, keyring: Keyring | None) -> dict[str, Any]:
    """What the (sealed) MP4 holds: streams, duration, the middle picture's two halves, each voice's strength."""
    with open_file(Path(output), keyring) as f, av.open(f) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        info: dict[str, Any] = {"video": (v.codec_context.name, v.width, v.height), "audio": a.codec_context.name,
                                "duration": (c.duration or 0) / 1e6}
        frames = list(c.decode(v))
    middle = frames[len(frames) // 2]
    info["sides"] = (colour(rgb_at(middle, 0.25, 0.5)), colour(rgb_at(middle, 0.75, 0.5)))
    with open_file(Path(output), keyring) as f, av.open(f) as c:
        sound = np.concatenate([fr.to_ndarray().reshape(-1) for fr in c.decode(audio=0)])
    info["voices"] = (strength(sound, 440) > 20, strength(sound, 1000) > 20, strength(sound, 700) < 5)
    return info


async def record_a_while(service: RecordingService, recorder: Recorder | RemoteRecorder, room: Room | RemoteRoom,
                         seconds: float = 3.0) -> None:
    """Record both sides of `room` for `seconds`, then stop and hand the files to the service."""
    recorder.start()
    recorder.attach(room)  # type: ignore[arg-type]
    for role in ("practitioner", "patient"):
        recorder.note_tracks(role, TRACKS)
    await asyncio.sleep(seconds)
    recorder.stop()
    service.finish(recorder)


async def join(room: RemoteRoom, pid: str, role: str, peer: Peer) -> RemoteParticipant:
    participant = room.add_participant(pid, role)
    await peer.accept(await participant.handle_offer(await peer.offer()))
    return participant


async def reoffer(peer: Peer, participant: RemoteParticipant) -> None:
    await peer.accept(await participant.handle_offer(await peer.offer()))


def keyring_at(tmp_path: Path) -> Keyring:
    key_file = tmp_path / "keys"
    generate_key(key_file)
    return Keyring(key_file)


async def test_a_recording_in_a_worker_composes_like_one_in_process(tmp_path: Path) -> None:
    keyring = keyring_at(tmp_path)
    audits: list[tuple[str, str, str | None]] = []
    service = service_for(tmp_path / "recordings", keyring, audits)
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41200, 41299), 2, module="recorder.worker",
                      extra={"key_file": str(keyring.path)})
    await pool.start()
    peers = [tone_peer("red", 440), tone_peer("blue", 1000), tone_peer("red", 440), tone_peer("blue", 1000)]
    local = Room("c-local", SfuOptions())
    try:
        # in this process, as with workers = 1
        await connect(local, "a", "practitioner", peers[0])
        await connect(local, "b", "patient", peers[1])
        await asyncio.gather(peers[0].wait_video(), peers[1].wait_video())
        here = service.new_recorder("c-local", "here")
        await record_a_while(service, here, local)

        # in a worker
        service.workers = pool
        room = pool.room("c-remote")
        await join(room, "c", "practitioner", peers[2])
        await join(room, "d", "patient", peers[3])
        await asyncio.gather(peers[2].wait_video(), peers[3].wait_video())
        there = service.new_recorder("c-remote", "there")
        assert isinstance(there, RemoteRecorder)
        await record_a_while(service, there, room)
        await composed(service, "here", "there")
        assert [p.id for p in there.parts] == ["there"] and not there.parts[0].lost and there.dropped == 0
        assert room.worker is not None and room.worker.pid != os.getpid()
    finally:
        local.close()
        await pool.close()
        await service.close()
        await asyncio.gather(*(p.close() for p in peers))

    manifests = {name: read_manifest(tmp_path / "recordings" / c / name)
                 for c, name in (("c-local", "here"), ("c-remote", "there"))}
    # the same manifest: tracks (who, what, codec, file kind), events, state, a duration of the time recorded
    shape = {name: (sorted((t.role, t.source, t.kind, t.codec, t.clock, t.file.rsplit(".", 1)[1]) for t in m.tracks),
                    [(e.role, e.mic, e.camera, e.screen) for e in m.events], m.state)
             for name, m in manifests.items()}
    assert shape["here"] == shape["there"] and len(shape["here"][0]) == 4, shape
    assert manifests["there"].consultation_id == "c-remote" and manifests["there"].id == "there"
    for name, m in manifests.items():
        assert m.duration is not None and 2.9 <= m.duration <= 3.6, (name, m.duration)
        folder = tmp_path / "recordings" / m.consultation_id / name
        # sealed as written, by the worker with the same key file as this process
        assert all(is_sealed(folder / t.file) for t in m.tracks)
    # the same composite
    got = {name: composite(service.composed[name]["output"], keyring) for name in manifests}
    assert got["here"]["video"] == got["there"]["video"] == ("h264", WIDTH, HEIGHT)
    assert got["here"]["audio"] == got["there"]["audio"] == "aac"
    assert abs(got["here"]["duration"] - got["there"]["duration"]) < 0.5, got
    assert got["here"]["sides"] == got["there"]["sides"] == ("red", "blue"), got
    assert got["here"]["voices"] == got["there"]["voices"] == (True, True, True), got
    # one part: the service adds no audit row of its own (start and stop are RecordingControl's, as in process)
    assert audits == []


async def test_a_worker_killed_while_recording_keeps_its_part_and_the_recording_goes_on(tmp_path: Path) -> None:
    # unsealed: a sealed track loses its last 64 KiB chunk in a kill, i.e. all of these few seconds of
    # small test pictures (sealing/, the same as a server killed while recording in process)
    keyring = None
    audits: list[tuple[str, str, str | None]] = []
    service = service_for(tmp_path / "recordings", keyring, audits)
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41300, 41399), 2, module="recorder.worker")
    await pool.start()
    service.workers = pool
    red, blue = tone_peer("red", 440), tone_peer("blue", 1000)
    try:
        room = pool.room("c-kill")
        a = await join(room, "a", "practitioner", red)
        b = await join(room, "b", "patient", blue)
        await asyncio.gather(red.wait_video(), blue.wait_video())
        states: list[tuple[str, Any]] = []
        a.on("media-state", lambda s: states.append(("a", s)))
        b.on("media-state", lambda s: states.append(("b", s)))
        recorder = service.new_recorder("c-kill", "first")
        assert isinstance(recorder, RemoteRecorder)
        recorder.start()
        recorder.attach(room)
        for role in ("practitioner", "patient"):
            recorder.note_tracks(role, TRACKS)
        await asyncio.sleep(3.0)

        old = room.worker
        assert old is not None and old.pid is not None
        dead_pid = old.pid
        os.kill(dead_pid, signal.SIGKILL)
        for _ in range(200):  # bounded: 20 s
            if ("a", "failed") in states and ("b", "failed") in states and len(recorder.parts) == 2:
                break
            await asyncio.sleep(0.1)
        assert ("a", "failed") in states and ("b", "failed") in states
        assert room.worker is not None and room.worker.pid not in (None, dead_pid)
        # the part the dead worker wrote is kept and composed on its own
        first, second = recorder.parts
        assert first.id == "first" and first.lost and not second.lost and second.id != "first"
        assert second.worker is room.worker
        await composed(service, "first")

        # what the page does on "failed": a new peer connection, a new offer (to the new worker)
        await asyncio.gather(red.close(), blue.close())
        red, blue = tone_peer("red", 440), tone_peer("blue", 1000)
        await asyncio.gather(reoffer(red, a), reoffer(blue, b))
        await asyncio.gather(red.wait_video(), blue.wait_video())
        await asyncio.sleep(3.0)
        recorder.stop()
        service.finish(recorder)
        await composed(service, second.id)
    finally:
        await pool.close()
        await service.close()
        await asyncio.gather(red.close(), blue.close())

    root = tmp_path / "recordings" / "c-kill"
    before, after = read_manifest(root / "first"), read_manifest(root / second.id)
    assert before.state == after.state == "composed"
    # the killed part: what was written before the kill (about 3 s), every track sealed
    assert before.duration is not None and 2.0 <= before.duration <= 3.8, before.duration
    assert len(before.tracks) == 4
    assert after.duration is not None and after.duration >= 2.5 and len(after.tracks) == 4
    # the tracks' last state is carried into the new part
    assert sorted((e.role, e.camera) for e in after.events) == [("patient", True), ("practitioner", True)]
    for name in ("first", second.id):
        got = composite(service.composed[name]["output"], keyring)
        # both pictures and both voices (a part cut by a kill, or begun while the peers reconnect, starts or
        # ends abruptly: the clean-tone check of the first test does not apply)
        assert got["sides"] == ("red", "blue") and got["voices"][:2] == (True, True), (name, got)
    # the server ended the first part and began the second; the end of the recording is the second's
    assert ("recording.stop", "first", None) in audits and ("recording.start", second.id, None) in audits
    assert audits.index(("recording.stop", "first", None)) < audits.index(("recording.start", second.id, None))


async def test_lip_sync_holds_when_the_recorder_runs_in_a_worker(tmp_path: Path, known_rtp_origin: None) -> None:
    """tests/integration/test_recorder_lipsync.py's publisher (click and flash together, video sent 200 ms
    late, sender reports from the capture clock), recorded in a worker: the composite's offset is <= 40 ms."""
    t0 = time.time() + 0.3
    peer = lip_sync_publisher(t0)
    service = RecordingService(RecordingConfig(width=LIP_WIDTH, height=LIP_HEIGHT, fps=OUT_FPS),
                               tmp_path / "recordings")
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41400, 41499), 2, module="recorder.worker")
    await pool.start()
    service.workers = pool
    try:
        room = pool.room("lip")
        participant = await join(room, "a", "practitioner", peer)
        for _ in range(300):  # bounded: 15 s
            if participant.media_state == "connected":
                break
            await asyncio.sleep(0.05)
        assert participant.media_state == "connected"
        recorder = service.new_recorder("lip", "r")
        recorder.start()
        recorder.attach(room)
        await asyncio.sleep(SECONDS)
        recorder.stop()
        service.finish(recorder)
        await composed(service, "r")
    finally:
        await pool.close()
        await service.close()
        await peer.close()
    manifest = read_manifest(tmp_path / "recordings" / "lip" / "r")
    assert sorted((t.source, t.clock) for t in manifest.tracks) == [("camera", "sender"), ("mic", "sender")]
    synced = av_offsets(service.composed["r"]["output"])
    print(f"\nlip sync in a worker, flash minus click (ms): {[round(x * 1000) for x in synced]}")
    assert all(abs(x) <= TOLERANCE for x in synced), synced


async def test_a_side_that_reconnects_during_a_recording_is_recorded_again_in_process(tmp_path: Path) -> None:
    """A new peer connection (a reload, a repaired failure) makes new producers whose codec is known only
    once media flows: the recorder takes them at their first packet (here in one process, as with workers = 1)."""
    room = Room("c-again", SfuOptions())
    red, blue = tone_peer("red", 440), tone_peer("blue", 1000)
    folder = tmp_path / "rec"
    try:
        await connect(room, "a", "practitioner", red)
        patient = await connect(room, "b", "patient", blue)
        await asyncio.gather(red.wait_video(), blue.wait_video())
        recorder = Recorder("r", "c-again", folder)
        recorder.start()
        recorder.attach(room)
        await asyncio.sleep(1.5)
        await blue.close()
        blue = tone_peer("blue", 1000)
        await blue.accept(await patient.handle_offer(await blue.offer()))
        await blue.wait_video()
        await asyncio.sleep(2.0)
        recorder.stop()
        manifest = await recorder.wait_closed()
    finally:
        room.close()
        await room.wait_closed()
        await asyncio.gather(red.close(), blue.close())
    cameras = sorted(t.start for t in manifest.tracks if (t.role, t.source) == ("patient", "camera"))
    assert len(cameras) == 2 and cameras[1] > 1.0, manifest.tracks  # the first connection's, then the new one's
    last = next(t for t in manifest.tracks if (t.role, t.source) == ("patient", "camera") and t.start == cameras[1])
    with av.open(str(folder / last.file)) as c:
        pictures = list(c.decode(video=0))
    assert len(pictures) > 10 and colour(rgb_at(pictures[-1], 0.5, 0.5)) == "blue"
