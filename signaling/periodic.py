"""A background job run at start and then every `interval` seconds, until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from .background import BackgroundService

logger = logging.getLogger(__name__)


class Periodic(BackgroundService):
    """Runs `work()` now and every `interval` seconds; an OSError is logged and the next round comes."""

    def __init__(self, name: str, interval: float, work: Callable[[], Awaitable[object]]) -> None:
        super().__init__()
        self.name = name
        self.interval = interval
        self._work = work

    async def _run(self) -> None:
        while True:
            try:
                await self._work()
            except OSError as exc:
                logger.error("%s failed: %s", self.name, exc.strerror or exc)
            await asyncio.sleep(self.interval)
