"""The documents' retention sweep: every kind of document goes after `[documents] retention_days`."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from clinic import Clinic

logger = logging.getLogger(__name__)

#: Seconds between two sweeps.
SWEEP_INTERVAL = 3600.0


class DocumentRetention:
    """Runs clinic.expire_documents() at start, then hourly; nothing when the retention is 0 (keep)."""

    def __init__(self, clinic: Clinic, retention_days: int, interval: float = SWEEP_INTERVAL) -> None:
        self.clinic = clinic
        self.retention_days = retention_days
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.retention_days:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.clinic.expire_documents(self.retention_days)
            except OSError as exc:
                logger.error("document retention sweep failed: %s", exc.strerror)
            await asyncio.sleep(self.interval)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
