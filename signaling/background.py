"""A service that runs one task in the background for as long as the application runs."""

from __future__ import annotations

import asyncio


class BackgroundService:
    """`start()` runs `_run()` as a task; `stop()` cancels it and waits for it to end."""

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        """Whether the task runs (for /readyz)."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        raise NotImplementedError
