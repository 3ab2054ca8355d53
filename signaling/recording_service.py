"""Recordings of the whole server: recorders' folders, composing in a worker process,
recovery after a crash, retention.  (Per-consultation control: call/recording_control.py.)

With media workers (`workers` set: [sfu] workers > 1) a recorder runs in the worker
holding the consultation's room (recorder/remote.py, recorder/worker.py); its files,
manifest, composition, document and audit rows are the same.  A part a dead worker
left is composed here like a recording a crash left behind."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import logging
import multiprocessing
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from recorder import Recorder
from recorder.remote import Part, RemoteRecorder
from recorder.compositor import compose_recording, worker_init
from recorder.errors import RecorderError
from recorder.manifest import Manifest, read_manifest, write_manifest
from sealing import Keyring
from sfu.remote import WorkerPool

from .config import RecordingConfig

logger = logging.getLogger(__name__)

# seconds between two retention sweeps
SWEEP_INTERVAL = 3600.0

# hooks the app wires to the document store:
# store(manifest, mp4 path) -> (document id, where the file now is): attach the MP4 to the consultation
StoreRecording = Callable[[Manifest, Path], Awaitable[tuple[str, Path]]]
# forget(manifest) when retention deletes a recording (remove its document)
ForgetRecording = Callable[[Manifest], Awaitable[None]]
# audit(action, consultation id, recording id, role of who did it or None for the
# server, document id): "recording.start", "recording.stop", "recording.delete"
AuditRecording = Callable[[str, str, str, str | None, str | None], Awaitable[None]]


class RecordingService:
    """Owns the recordings folder and the one composing process."""

    def __init__(self, config: RecordingConfig, root: Path, keyring: Keyring | None = None) -> None:
        self.config = config
        # tracks are sealed as written, the MP4 once composed (sealing/)
        self.keyring = keyring
        self.root = root
        self.store: StoreRecording | None = None
        self.forget: ForgetRecording | None = None
        self.audit: AuditRecording | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._active: set[Recorder | RemoteRecorder] = set()
        # the media workers, when the rooms live there: recorders run next to them
        self.workers: WorkerPool | None = None
        # set by signaling.diskwatch: the data directory is under its free-space floor
        self.disk_low = False
        # composed recordings: (consultation id, recording id) -> result, for tests and logs
        self.composed: dict[str, dict[str, Any]] = {}

    def start(self) -> None:
        """Compose what a crash left behind, and start the retention sweeps."""
        self.spawn(self.recover())
        if self.config.retention_days:
            self.spawn(self._sweep_forever())

    async def close(self) -> None:
        for recorder in list(self._active):
            recorder.stop()  # files closed; composed at the next start
        await asyncio.gather(*(r.wait_closed() for r in list(self._active)), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def composer_problem(self) -> str | None:
        """Why recordings cannot be composed (for /readyz), or None; the worker starts on first use."""
        if self._pool is None:
            return None
        # a killed worker breaks the pool for good: every later composition would fail
        if getattr(self._pool, "_broken", False):
            return "the composing worker died"
        return None

    def folder(self, consultation_id: str, recording_id: str) -> Path:
        return self.root / consultation_id / recording_id

    def new_recorder(self, consultation_id: str, recording_id: str) -> Recorder | RemoteRecorder:
        recorder: Recorder | RemoteRecorder
        if self.workers is not None:
            recorder = RemoteRecorder(
                recording_id, consultation_id, lambda part_id: self.folder(consultation_id, part_id), self.workers,
                part_ended=lambda part: self.spawn(self._part_ended(consultation_id, part)),
                part_started=lambda part_id: self.spawn(
                    self.note("recording.start", consultation_id, part_id, None)))
        else:
            recorder = Recorder(recording_id, consultation_id, self.folder(consultation_id, recording_id),
                                keyring=self.keyring)
        self._active.add(recorder)
        return recorder

    async def _part_ended(self, consultation_id: str, part: Part) -> None:
        """A part of a recording ended before the recording (its worker died): audit, compose what it wrote."""
        await self.note("recording.stop", consultation_id, part.id, None)
        await asyncio.shield(part.closed)
        await self.compose(part.folder)

    async def note(self, action: str, consultation_id: str, recording_id: str,
                   role: str | None = None, document_id: str | None = None) -> None:
        """An audit entry (when the audit log is wired); a failure is logged, never raised."""
        if self.audit is None:
            return
        try:
            await self.audit(action, consultation_id, recording_id, role, document_id)
        except Exception:
            logger.exception("Recording(%s) audit %s failed", recording_id, action)

    def finish(self, recorder: Recorder | RemoteRecorder) -> None:
        """After `recorder.stop()`: wait for its files, then compose and store, in the background."""
        self.spawn(self._finish(recorder))

    async def _finish(self, recorder: Recorder | RemoteRecorder) -> None:
        try:
            await recorder.wait_closed()
        finally:
            self._active.discard(recorder)
        folder = recorder.final_folder if isinstance(recorder, RemoteRecorder) else recorder.directory
        if folder is not None:
            await self.compose(folder)

    async def compose(self, folder: Path) -> dict[str, Any] | None:
        """Compose one recording folder in the worker process, then store it."""
        loop = asyncio.get_running_loop()
        if self._pool is None:
            # spawn: a fresh interpreter, never a fork of a process running an event loop
            self._pool = concurrent.futures.ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=worker_init)
        c = self.config
        try:
            result: dict[str, Any] = await loop.run_in_executor(
                self._pool, compose_recording, str(folder), c.width, c.height, c.fps,
                None if self.keyring is None else str(self.keyring.path))
        except (RecorderError, OSError, concurrent.futures.process.BrokenProcessPool) as exc:
            logger.error("Recording(%s) was not composed: %s", folder.name, exc)
            return None
        logger.info("Recording(%s) composed: %.1f s, %d frames", folder.name, result["duration"], result["frames"])
        if self.store is not None:
            manifest = await asyncio.to_thread(read_manifest, folder)
            try:
                manifest.document_id, moved = await self.store(manifest, folder / str(manifest.output))
            except Exception:
                # the MP4 stays in the recording folder; the manifest says it is not stored
                logger.exception("Recording(%s) could not be stored as a document", folder.name)
            else:
                manifest.output = None
                result["output"], result["document_id"] = str(moved), manifest.document_id
                await asyncio.to_thread(write_manifest, folder, manifest)
        self.composed[folder.name] = result
        return result

    async def recover(self) -> int:
        """Compose every recording a crash (or a shutdown) left recording/stopped; returns how many."""
        folders = await asyncio.to_thread(self._unfinished)
        for folder in folders:
            logger.info("Recording(%s) left unfinished: composing it", folder.name)
            await self.compose(folder)
        return len(folders)

    def _unfinished(self) -> list[Path]:
        found = []
        for folder in sorted(self.root.glob("*/*")):
            try:
                manifest = read_manifest(folder)
            except RecorderError:
                continue
            if manifest.state in ("recording", "stopped") and not any(r.directory == folder for r in self._active):
                found.append(folder)
        return found

    async def sweep(self, now: datetime.datetime | None = None) -> int:
        """Delete recordings older than the retention period; returns how many."""
        if not self.config.retention_days:
            return 0
        now = now or datetime.datetime.now(datetime.UTC)
        limit = now - datetime.timedelta(days=self.config.retention_days)
        expired = await asyncio.to_thread(self._expired, limit)
        for folder, manifest in expired:
            if self.forget is not None:
                try:
                    await self.forget(manifest)
                except Exception:
                    logger.exception("Recording(%s) could not be forgotten; kept", manifest.id)
                    continue
            await asyncio.to_thread(shutil.rmtree, folder, True)
            await self.note("recording.delete", manifest.consultation_id, manifest.id, None, manifest.document_id)
            logger.info("Recording(%s) of consultation %s deleted after %d days",
                        manifest.id, manifest.consultation_id, self.config.retention_days)
        return len(expired)

    def _expired(self, limit: datetime.datetime) -> list[tuple[Path, Manifest]]:
        out = []
        for folder in sorted(self.root.glob("*/*")):
            try:
                manifest = read_manifest(folder)
                started = datetime.datetime.fromisoformat(manifest.started_at)
            except (RecorderError, ValueError):
                continue
            if started < limit and manifest.state in ("composed", "failed"):
                out.append((folder, manifest))
        return out

    async def _sweep_forever(self) -> None:
        while True:
            try:
                await self.sweep()
            except OSError as exc:
                logger.error("recording retention sweep failed: %s", exc.strerror)
            await asyncio.sleep(SWEEP_INTERVAL)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run `coro` in the background; cancelled by close()."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
