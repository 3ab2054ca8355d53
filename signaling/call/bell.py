"""A bell the hubs ring whenever a call's state changes, for pages that follow the day live."""

from __future__ import annotations

import asyncio


class ChangeBell:
    """Wake every waiter at once; a waiter also wakes after `timeout` (to look at other nodes)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        #: the server is stopping: waiters should end
        self.closed = False

    def close(self) -> None:
        self.closed = True
        self.ring()

    def ring(self) -> None:
        # waiters hold the event they started on; the next ones get a fresh one
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when rung (or closed), False after `timeout` seconds."""
        if self.closed:
            return True
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True
