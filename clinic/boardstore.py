"""The whiteboard's rows (sync, worker thread): loads a `Board`, writes its `BoardChanges`."""

from __future__ import annotations

import json
import logging

from . import timestamps
from .board import Action, Background, Board, BoardChanges, BoardLimits, Change, Stroke
from .database import Database, Row, transaction
from .errors import NotFound
from .models import Role

logger = logging.getLogger(__name__)


def _background(row: Row) -> Background:
    sizes = tuple((int(w), int(h)) for w, h in json.loads(row["sizes"]))
    return Background(id=row["id"], kind=row["kind"], sizes=sizes)


class BoardStore:
    """Each consultation's board: one settings row, its backgrounds, strokes and actions.

    Blocking: every method runs SQL, so call it from the worker thread.
    """

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def load(self, consultation_id: str, limits: BoardLimits) -> Board:
        conn = self._conn
        row = conn.execute("SELECT * FROM whiteboard WHERE consultation_id = ?", (consultation_id,)).fetchone()
        background = None
        if row is not None and row["background_id"] is not None:
            background = self.get_background(consultation_id, row["background_id"])
        strokes = [
            (Stroke(id=r["id"], author=Role(r["author"]), sheet=r["sheet"], color=r["color"], width=r["width"],
                    points=tuple(json.loads(r["points"]))), bool(r["visible"]))
            for r in conn.execute("SELECT * FROM whiteboard_stroke WHERE consultation_id = ? ORDER BY seq",
                                  (consultation_id,))
        ]
        actions = [
            Action(author=Role(r["author"]), seq=r["seq"], kind=r["kind"], undone=bool(r["undone"]),
                   changes=tuple(Change(i, bool(b), bool(a)) for i, b, a in json.loads(r["changes"])))
            for r in conn.execute("SELECT * FROM whiteboard_action WHERE consultation_id = ? ORDER BY seq",
                                  (consultation_id,))
        ]
        if row is None:
            return Board(limits, strokes=strokes, actions=actions)
        return Board(limits, is_open=bool(row["is_open"]), page=row["page"], background=background,
                     strokes=strokes, actions=actions)

    def save(self, consultation_id: str, board: Board, changes: BoardChanges) -> None:
        """Write what one operation changed, in one transaction."""
        if changes.empty:
            return
        with transaction(self._conn) as conn:
            if changes.settings:
                conn.execute(
                    "INSERT INTO whiteboard (consultation_id, is_open, background_id, page, updated_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (consultation_id) DO UPDATE SET"
                    " is_open = excluded.is_open, background_id = excluded.background_id,"
                    " page = excluded.page, updated_at = excluded.updated_at",
                    (consultation_id, int(board.is_open), None if board.background is None else board.background.id,
                     board.page, timestamps.to_text(timestamps.utc_now())),
                )
            next_seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM whiteboard_stroke WHERE consultation_id = ?",
                                    (consultation_id,)).fetchone()[0]
            for offset, s in enumerate(changes.added):
                conn.execute(
                    "INSERT INTO whiteboard_stroke (consultation_id, id, seq, author, sheet, color, width, points, visible)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                    (consultation_id, s.id, next_seq + offset, s.author.value, s.sheet, s.color, s.width,
                     json.dumps(list(s.points))),
                )
            for ids, visible in ((changes.shown, 1), (changes.hidden, 0)):
                conn.executemany("UPDATE whiteboard_stroke SET visible = ? WHERE consultation_id = ? AND id = ?",
                                 [(visible, consultation_id, i) for i in ids])
            conn.executemany("DELETE FROM whiteboard_stroke WHERE consultation_id = ? AND id = ?",
                             [(consultation_id, i) for i in changes.deleted])
            conn.executemany("DELETE FROM whiteboard_action WHERE consultation_id = ? AND seq = ?",
                             [(consultation_id, a.seq) for a in changes.dropped_actions])
            conn.executemany(
                "INSERT INTO whiteboard_action (consultation_id, seq, author, kind, changes, undone)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (consultation_id, seq) DO UPDATE SET undone = excluded.undone",
                [(consultation_id, a.seq, a.author.value, a.kind,
                  json.dumps([[c.stroke_id, int(c.before), int(c.after)] for c in a.changes]), int(a.undone))
                 for a in changes.saved_actions],
            )

    def add_background(self, consultation_id: str, background: Background) -> None:
        with transaction(self._conn) as conn:
            if conn.execute("SELECT 1 FROM consultation WHERE id = ?", (consultation_id,)).fetchone() is None:
                raise NotFound(f"no consultation {consultation_id!r}")
            conn.execute(
                "INSERT INTO whiteboard_background (id, consultation_id, kind, sizes, created_at) VALUES (?, ?, ?, ?, ?)",
                (background.id, consultation_id, background.kind, json.dumps([list(s) for s in background.sizes]),
                 timestamps.to_text(timestamps.utc_now())),
            )
        logger.info("Consultation(%s) whiteboard background %s added (%s, %d pages)", consultation_id,
                    background.id, background.kind, background.pages)

    def get_background(self, consultation_id: str, background_id: str) -> Background:
        row = self._conn.execute("SELECT * FROM whiteboard_background WHERE consultation_id = ? AND id = ?",
                                 (consultation_id, background_id)).fetchone()
        if row is None:
            raise NotFound("no such whiteboard background")
        return _background(row)

    def count_backgrounds(self, consultation_id: str) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM whiteboard_background WHERE consultation_id = ?",
                                 (consultation_id,)).fetchone()
        return int(row[0])
