"""Free space in the data directory: below the operator's floor, nothing more is written."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

from .errors import DiskFull

MIB = 1024 * 1024


class DiskGuard:
    """Checks `folder`'s filesystem against `[storage] min_free_mb` (0 = never refuse)."""

    def __init__(self, folder: Path, min_free_mb: int) -> None:
        self.folder = folder
        self.min_free_bytes = min_free_mb * MIB

    def free_bytes(self) -> int:
        """Blocking (one statvfs): call it from a thread."""
        folder = self.folder
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent  # not created yet: its disk is the parent's
        return shutil.disk_usage(folder).free

    def low(self, free: int) -> bool:
        return self.min_free_bytes > 0 and free < self.min_free_bytes

    async def ensure_room(self) -> None:
        """Raise DiskFull when free space is under the floor."""
        free = await asyncio.to_thread(self.free_bytes)
        if self.low(free):
            raise DiskFull(f"{free // MIB} MiB free in the data directory, under the {self.min_free_bytes // MIB} MiB floor")

    async def problem(self) -> str | None:
        """Why the data directory cannot take writes (for /readyz), or None."""
        try:
            await asyncio.to_thread(self._probe)
        except OSError as exc:
            return f"not writable: {exc.strerror or exc.__class__.__name__}"
        try:
            await self.ensure_room()
        except DiskFull as exc:
            return str(exc)
        return None

    def _probe(self) -> None:
        probe = self.folder / f".write-probe-{uuid.uuid4().hex}"
        try:
            with probe.open("wb") as f:
                f.write(b"ok")
                os.fsync(f.fileno())
        finally:
            probe.unlink(missing_ok=True)

