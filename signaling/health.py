"""Readiness for the operator (/readyz): what must work before traffic is sent here."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from clinic import Clinic

from .diskspace import DiskGuard
from .mail_sender import Mailer
from .recording_service import RecordingService

# one check may take this long before it counts as failed (a locked database waits)
CHECK_TIMEOUT = 5.0


class Readiness:
    """Each check answers None (fine) or a short reason; no patient data in any reason."""

    def __init__(self, clinic: Clinic, disk: DiskGuard, mailer: Mailer, recordings: RecordingService,
                 mail_stuck_after: datetime.timedelta) -> None:
        self._clinic = clinic
        self._disk = disk
        self._mailer = mailer
        self._recordings = recordings
        self._mail_stuck_after = mail_stuck_after

    async def report(self) -> dict[str, Any]:
        """{"status": "ready"|"not ready", "checks": {name: "ok"|reason}, "failed": [names]}."""
        names = ("database", "data_dir", "mail_queue", "composer")
        results = await asyncio.gather(*(self._bounded(getattr(self, f"_{name}")()) for name in names))
        checks = {name: result or "ok" for name, result in zip(names, results)}
        failed = [name for name, result in zip(names, results) if result]
        return {"status": "not ready" if failed else "ready", "checks": checks, "failed": failed}

    @staticmethod
    async def _bounded(check: Any) -> str | None:
        try:
            result: str | None = await asyncio.wait_for(check, CHECK_TIMEOUT)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT:.0f} s"
        return result

    async def _database(self) -> str | None:
        try:
            await self._clinic.check_writable()
        except Exception as exc:  # sqlite3 or psycopg: either engine's refusal
            return f"not writable: {exc.__class__.__name__}: {exc}"
        return None

    async def _data_dir(self) -> str | None:
        return await self._disk.problem()

    async def _mail_queue(self) -> str | None:
        if not self._mailer.alive:
            return "the mail sender is not running"
        # a mail still queued long after it was written (a reminder: after its time): the relay refuses or is down
        queued = [m.waiting_since for m in await self._clinic.practice.mail_recent() if m.state == "queued"]
        if queued:
            waiting = datetime.datetime.now(datetime.UTC) - min(queued)
            if waiting > self._mail_stuck_after:
                return f"{len(queued)} mail(s) queued, the oldest for {waiting.total_seconds() / 60:.0f} min"
        return None

    async def _composer(self) -> str | None:
        return self._recordings.composer_problem()
