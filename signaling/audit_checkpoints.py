"""The periodic checkpoint of the audit chain's head, kept outside the database (clinic/audit.py)."""

from __future__ import annotations

import logging
from pathlib import Path

from clinic import Clinic

from .periodic import Periodic

logger = logging.getLogger(__name__)


class AuditCheckpoints:
    """Every `interval` seconds (and at start and stop), log the head and append it to `path`."""

    def __init__(self, clinic: Clinic, path: Path, interval: float) -> None:
        self.clinic = clinic
        self.path = path
        self._job = Periodic("audit checkpoint", interval, self.write)

    async def write(self) -> None:
        """One checkpoint now (nothing when the head has not moved since the last one)."""
        try:
            checkpoint = await self.clinic.practice.audit_checkpoint(self.path)
        except (OSError, ValueError) as exc:
            logger.error("Audit checkpoint not written: %s", exc)
            return
        if checkpoint is not None:
            # this line is the copy outside the data dir: log shippers keep it elsewhere
            logger.info("Audit checkpoint: entry %d, head %s", checkpoint.seq, checkpoint.hash)

    def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        """Stop the loop and write a last checkpoint."""
        await self._job.stop()
        await self.write()
