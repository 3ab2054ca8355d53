"""Watches the storage folders' free space while the server runs: recordings stop before the disk fills."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from . import keys as app_keys
from .background import BackgroundService
from .call.hub import HubRegistry
from .diskspace import DiskGuard
from .recording_service import RecordingService

logger = logging.getLogger(__name__)

# seconds between two looks at the free space (one statvfs each)
CHECK_SECONDS = 1.0


class DiskWatch(BackgroundService):
    """Below the floor: new recordings are refused and running ones stop, both sides told."""

    def __init__(self, guard: DiskGuard, hubs: HubRegistry, recordings: RecordingService,
                 interval: float = CHECK_SECONDS) -> None:
        super().__init__()
        self._guard = guard
        self._hubs = hubs
        self._recordings = recordings
        self._interval = interval

    async def check(self) -> None:
        name, free = await asyncio.to_thread(self._guard.lowest)
        low = self._guard.low(free)
        if low != self._recordings.disk_low:
            logger.warning("%s folder's disk %s: %d MiB free", name,
                           "under its floor" if low else "back above its floor", free // (1024 * 1024))
        self._recordings.disk_low = low
        if low:
            for hub in self._hubs.hubs():
                await hub.stop_recording_disk_full()

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # one failed look must not end the watch
                logger.exception("free-space check failed")
            await asyncio.sleep(self._interval)


async def disk_watch(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx of the public app, after the one that builds hubs and recordings."""
    watch = DiskWatch(app[app_keys.DISK], app[app_keys.HUBS], app[app_keys.RECORDINGS])
    watch.start()
    yield
    await watch.stop()
