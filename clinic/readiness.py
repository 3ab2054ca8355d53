"""What each side reports from the waiting room, stored with the consultation (sync, worker thread)."""

from __future__ import annotations

import logging

from . import timestamps
from .database import Database, Row, transaction
from .errors import NotFound
from .models import NetTest, Readiness, Role

logger = logging.getLogger(__name__)

_TEST_COLUMNS = ("verdict", "reason", "rtt_ms", "jitter_ms", "loss_pct", "up_kbps", "down_kbps", "relay")


def _readiness(row: Row) -> Readiness:
    test = None
    if row["verdict"] is not None:
        relay = row["relay"]
        test = NetTest(
            verdict=row["verdict"],
            reason=row["reason"],
            rtt_ms=row["rtt_ms"],
            jitter_ms=row["jitter_ms"],
            loss_pct=row["loss_pct"],
            up_kbps=row["up_kbps"],
            down_kbps=row["down_kbps"],
            relay=None if relay is None else bool(relay),
        )
    tested_at = row["tested_at"]
    return Readiness(
        consultation_id=row["consultation_id"],
        role=Role(row["role"]),
        mic=row["mic"],
        camera=row["camera"],
        test=test,
        tested_at=None if tested_at is None else timestamps.from_text(tested_at),
        updated_at=timestamps.from_text(row["updated_at"]),
    )


class ReadinessBook:
    """Each side's latest device state and connection test, one row per side.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def save(self, consultation_id: str, role: Role, *, mic: str, camera: str, test: NetTest | None) -> Readiness:
        """Record a side's devices and, when `test` is given, its new test; a missing test keeps the last one."""
        role = Role(role)
        now = timestamps.utc_now()
        # validate before touching the database
        Readiness(consultation_id, role, mic, camera, test, now if test else None, now)
        with transaction(self._conn) as conn:
            if conn.execute("SELECT 1 FROM consultation WHERE id = ?", (consultation_id,)).fetchone() is None:
                raise NotFound(f"no consultation {consultation_id!r}")
            conn.execute(
                "INSERT INTO readiness (consultation_id, role, mic, camera, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (consultation_id, role) DO UPDATE SET mic = excluded.mic,"
                " camera = excluded.camera, updated_at = excluded.updated_at",
                (consultation_id, role.value, mic, camera, timestamps.to_text(now)),
            )
            if test is not None:
                values = [getattr(test, name) for name in _TEST_COLUMNS]
                values[-1] = None if test.relay is None else int(test.relay)
                conn.execute(
                    "UPDATE readiness SET " + ", ".join(f"{c} = ?" for c in _TEST_COLUMNS) + ", tested_at = ?"
                    " WHERE consultation_id = ? AND role = ?",
                    (*values, timestamps.to_text(now), consultation_id, role.value),
                )
        logger.info("Consultation(%s) readiness of %s saved (test: %s)", consultation_id, role.value,
                    test.verdict if test else "unchanged")
        return self.get(consultation_id)[role]

    def get(self, consultation_id: str) -> dict[Role, Readiness]:
        """Each side's readiness, for the sides that reported one."""
        found = self._conn.execute(
            "SELECT * FROM readiness WHERE consultation_id = ?", (consultation_id,)
        ).fetchall()
        return {Role(row["role"]): _readiness(row) for row in found}
