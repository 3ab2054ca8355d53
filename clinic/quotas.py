"""Upload quotas: bytes one side, and one consultation, may store as documents.

Checked while the bytes arrive, counting the uploads in flight, so 30 uploads sent
at once cannot each see an empty quota.  Documents the system adds (recordings)
count for nobody.
"""

from __future__ import annotations

import dataclasses

from .database import Database
from .errors import QuotaExceeded

#: The sides whose documents count against the quotas.
SIDES = ("patient", "practitioner")


@dataclasses.dataclass(frozen=True, slots=True)
class UploadQuota:
    """At most `per_side` bytes stored by each side, `per_consultation` by both together."""

    per_side: int
    per_consultation: int


def stored_bytes(conn: Database, consultation_id: str) -> dict[str, int]:
    """Bytes of the consultation's documents (not removed) per side (blocking SQL)."""
    rows = conn.execute(
        "SELECT added_by, SUM(size) FROM document WHERE consultation_id = ? AND removed_at IS NULL"
        " GROUP BY added_by", (consultation_id,)).fetchall()
    return {row[0]: int(row[1] or 0) for row in rows if row[0] in SIDES}


@dataclasses.dataclass(slots=True)
class _Tally:
    by_side: dict[str, int] | None = None  # None until the first upload read the database
    uploads: int = 0


class UploadLedger:
    """Bytes stored and being received per consultation, while uploads to it run.

    Used on the event loop only.  An entry lives while at least one upload to its
    consultation runs: it starts from what is stored, then counts what arrives, and
    gives back the bytes of an upload that fails.  Each upload calls begin(), then
    load() with what it read from the database, add() per chunk, end().
    """

    def __init__(self) -> None:
        self._tallies: dict[str, _Tally] = {}

    def begin(self, consultation_id: str) -> None:
        """An upload starts (before reading the database: an upload ending meanwhile keeps the entry)."""
        self._tallies.setdefault(consultation_id, _Tally()).uploads += 1

    def load(self, consultation_id: str, stored: dict[str, int]) -> None:
        """What the database held, read after begin(); only the first reading of an entry counts."""
        tally = self._tallies[consultation_id]
        if tally.by_side is None:
            tally.by_side = dict(stored)

    def add(self, consultation_id: str, side: str, size: int, quota: UploadQuota) -> None:
        """`size` more bytes arrived from `side`; QuotaExceeded (nothing counted) past a quota."""
        by_side = self._tallies[consultation_id].by_side
        assert by_side is not None, "load() comes before add()"
        if by_side.get(side, 0) + size > quota.per_side:
            raise QuotaExceeded("side", quota.per_side)
        if sum(by_side.values()) + size > quota.per_consultation:
            raise QuotaExceeded("consultation", quota.per_consultation)
        by_side[side] = by_side.get(side, 0) + size

    def end(self, consultation_id: str, side: str, received: int, kept: bool) -> None:
        """An upload ended: its bytes stay counted if it was kept."""
        tally = self._tallies[consultation_id]
        if not kept and tally.by_side is not None:
            tally.by_side[side] = max(0, tally.by_side.get(side, 0) - received)
        tally.uploads -= 1
        if tally.uploads == 0:
            del self._tallies[consultation_id]  # the next upload reads the database afresh
