"""Free space of the storage folders: below the operator's floor, nothing more is written."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path

from .errors import DiskFull

MIB = 1024 * 1024


def _existing(folder: Path) -> Path:
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # not created yet: its disk is the parent's
    return folder


class DiskGuard:
    """Checks the filesystem of every storage folder against `[storage] min_free_mb` (0 = never refuse).

    `folders` names each folder (data, documents, whiteboard, recordings): they may sit on
    different disks (a shared mount for documents, a local disk for recordings), and the
    fullest one decides, since a write can land in any of them.
    """

    def __init__(self, folders: Mapping[str, Path], min_free_mb: int) -> None:
        self.folders = dict(folders)
        self.min_free_bytes = min_free_mb * MIB

    def lowest(self) -> tuple[str, int]:
        """(name of the folder whose disk has the least free space, its free bytes).

        Blocking (one stat and one statvfs per folder): call it from a thread.
        """
        by_disk: dict[int, tuple[str, int]] = {}
        for name, folder in self.folders.items():
            existing = _existing(folder)
            device = existing.stat().st_dev
            if device not in by_disk:
                by_disk[device] = (name, shutil.disk_usage(existing).free)
        return min(by_disk.values(), key=lambda entry: entry[1])

    def free_bytes(self) -> int:
        """The least free space among the folders' disks (blocking: call it from a thread)."""
        return self.lowest()[1]

    def low(self, free: int) -> bool:
        return self.min_free_bytes > 0 and free < self.min_free_bytes

    async def ensure_room(self) -> None:
        """Raise DiskFull when a folder's disk is under the floor."""
        name, free = await asyncio.to_thread(self.lowest)
        if self.low(free):
            raise DiskFull(f"{free // MIB} MiB free for the {name} folder, under the "
                           f"{self.min_free_bytes // MIB} MiB floor")

    async def problem(self) -> str | None:
        """Why the storage folders cannot take writes (for /readyz), or None."""
        for name, folder in self.folders.items():
            try:
                await asyncio.to_thread(self._probe, _existing(folder))
            except OSError as exc:
                return f"{name} folder not writable: {exc.strerror or exc.__class__.__name__}"
        try:
            await self.ensure_room()
        except DiskFull as exc:
            return str(exc)
        return None

    @staticmethod
    def _probe(folder: Path) -> None:
        probe = folder / f".write-probe-{uuid.uuid4().hex}"
        try:
            with probe.open("wb") as f:
                f.write(b"ok")
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)
