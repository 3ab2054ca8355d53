"""The shared whiteboard of a consultation as a pure model (no I/O).

Strokes are polylines in board coordinates (fractions 0..1 of the board's width
and height), drawn on a *sheet*: the blank board, or one page of a background
document.  Every change a person makes is an *action* (draw, erase, clear) with
the strokes it showed or hid; each person undoes and redoes only their own
actions.  Each operation returns the `BoardChanges` to persist, so storage
(clinic/boardstore.py) stays a dumb writer and this module stays testable.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Final, Literal

from .models import Role

#: Pen colours offered to both sides (the server refuses any other).
PALETTE: Final = ("#1b2733", "#c62828", "#0b6bcb", "#2e7d32", "#f9a825", "#ffffff")
#: Pen widths, as fractions of the board's width.
MIN_WIDTH: Final = 0.001
MAX_WIDTH: Final = 0.05
BLANK_SHEET: Final = "blank"
_STROKE_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")

ActionKind = Literal["draw", "erase", "clear"]


class BoardError(ValueError):
    """An operation the board refuses; the message says why (no state was changed)."""


class BoardFull(BoardError):
    """The board holds as many strokes as its limits allow."""


class NothingToUndo(BoardError):
    """Undo or redo with an empty history."""


@dataclasses.dataclass(frozen=True, slots=True)
class BoardLimits:
    """Bounds of one board (from the [whiteboard] config)."""

    max_points_per_stroke: int = 2000
    max_strokes: int = 1000
    undo_depth: int = 100
    # all strokes shown together: bounds what a (re)joining tab receives and redraws
    max_points: int = 200000


def check_stroke_id(stroke_id: str) -> str:
    if not _STROKE_ID.fullmatch(stroke_id):
        raise BoardError("a stroke id is 1 to 40 letters, digits, '-' or '_'")
    return stroke_id


def check_points(points: list[Any] | tuple[Any, ...]) -> tuple[float, ...]:
    """Flat [x0, y0, x1, y1, ...] with every coordinate a number in 0..1, rounded to 1e-5."""
    if len(points) % 2:
        raise BoardError("points must hold x, y pairs (an even count of numbers)")
    out: list[float] = []
    for value in points:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise BoardError("every coordinate must be a number between 0 and 1")
        out.append(round(float(value), 5))
    return tuple(out)


def check_pen(color: str, width: float) -> None:
    if color not in PALETTE:
        raise BoardError(f"colour must be one of {', '.join(PALETTE)}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not MIN_WIDTH <= width <= MAX_WIDTH:
        raise BoardError(f"width must be a number between {MIN_WIDTH} and {MAX_WIDTH}")


@dataclasses.dataclass(frozen=True, slots=True)
class Stroke:
    """One finished pen stroke."""

    id: str
    author: Role
    sheet: str
    color: str
    width: float
    points: tuple[float, ...]  # x0, y0, x1, y1, ... in 0..1

    def __post_init__(self) -> None:
        check_stroke_id(self.id)
        check_pen(self.color, self.width)
        if not self.points:
            raise BoardError("a stroke needs at least one point")
        check_points(self.points)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "author": self.author.value, "sheet": self.sheet, "color": self.color,
                "width": self.width, "points": list(self.points)}


@dataclasses.dataclass(frozen=True, slots=True)
class Change:
    """A stroke's visibility before and after an action."""

    stroke_id: str
    before: bool
    after: bool


@dataclasses.dataclass(frozen=True, slots=True)
class Action:
    """Something one person did to the board; `undone` while it sits on their redo stack."""

    author: Role
    seq: int
    kind: ActionKind
    changes: tuple[Change, ...]
    undone: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class Background:
    """A document shown under the strokes: an image (one page) or a PDF's pages."""

    id: str
    kind: Literal["image", "pdf"]
    sizes: tuple[tuple[int, int], ...]  # each page's rendered width and height, in pixels

    @property
    def pages(self) -> int:
        return len(self.sizes)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "pages": self.pages, "sizes": [list(s) for s in self.sizes]}


def sheet_of(background: Background | None, page: int) -> str:
    return BLANK_SHEET if background is None else f"{background.id}/{page}"


@dataclasses.dataclass(slots=True)
class BoardChanges:
    """What an operation changed, for storage and for the browsers."""

    added: list[Stroke] = dataclasses.field(default_factory=list)
    shown: list[str] = dataclasses.field(default_factory=list)
    hidden: list[str] = dataclasses.field(default_factory=list)
    deleted: list[str] = dataclasses.field(default_factory=list)  # strokes no history can bring back
    saved_actions: list[Action] = dataclasses.field(default_factory=list)  # new or changed
    dropped_actions: list[Action] = dataclasses.field(default_factory=list)
    settings: bool = False  # open / page / background changed

    @property
    def empty(self) -> bool:
        return not (self.added or self.shown or self.hidden or self.deleted or self.saved_actions
                    or self.dropped_actions or self.settings)


class Board:
    """The strokes, the settings and each person's undo/redo history of one board."""

    def __init__(self, limits: BoardLimits, *, is_open: bool = False, page: int = 0,
                 background: Background | None = None, strokes: list[tuple[Stroke, bool]] | None = None,
                 actions: list[Action] | None = None) -> None:
        self.limits = limits
        self.is_open = is_open
        self.background = background
        self.page = page
        self.strokes: dict[str, Stroke] = {}
        self.visible: dict[str, bool] = {}
        for stroke, visible in strokes or []:
            self.strokes[stroke.id] = stroke
            self.visible[stroke.id] = visible
        self._done: dict[Role, list[Action]] = {role: [] for role in Role}
        self._redo: dict[Role, list[Action]] = {role: [] for role in Role}
        for action in sorted(actions or [], key=lambda a: a.seq):
            (self._redo if action.undone else self._done)[action.author].append(action)
        for stack in self._redo.values():
            stack.reverse()  # the most recently undone (lowest seq) on top
        self._seq = max((a.seq for a in actions or []), default=0)

    # reading

    @property
    def sheet(self) -> str:
        return sheet_of(self.background, self.page)

    def visible_strokes(self) -> list[Stroke]:
        return [s for s in self.strokes.values() if self.visible[s.id]]

    def can_undo(self, role: Role) -> bool:
        return bool(self._done[role])

    def can_redo(self, role: Role) -> bool:
        return bool(self._redo[role])

    def settings_json(self) -> dict[str, Any]:
        return {"open": self.is_open, "page": self.page, "sheet": self.sheet,
                "background": None if self.background is None else self.background.as_json()}

    # settings

    def set_open(self, is_open: bool) -> BoardChanges:
        self.is_open = is_open
        return BoardChanges(settings=True)

    def set_page(self, page: int) -> BoardChanges:
        pages = 1 if self.background is None else self.background.pages
        if not 0 <= page < pages:
            raise BoardError(f"page must be between 0 and {pages - 1}")
        self.page = page
        return BoardChanges(settings=True)

    def set_background(self, background: Background | None) -> BoardChanges:
        """A new document (or none): page 0; strokes stay with the sheet they were drawn on."""
        self.background = background
        self.page = 0
        return BoardChanges(settings=True)

    # drawing

    def points_shown(self) -> int:
        return sum(len(s.points) // 2 for s in self.strokes.values() if self.visible[s.id])

    def check_room(self, extra_live: int = 0, extra_points: int = 0) -> None:
        """BoardFull unless one more stroke (besides `extra_live` being drawn) and `extra_points` fit."""
        if sum(self.visible.values()) + extra_live >= self.limits.max_strokes:
            raise BoardFull(f"the board holds at most {self.limits.max_strokes} strokes: erase, undo or clear first")
        if self.points_shown() + extra_points > self.limits.max_points:
            raise BoardFull(f"the board holds at most {self.limits.max_points} points: erase, undo or clear first")

    def add_stroke(self, stroke: Stroke) -> BoardChanges:
        if stroke.id in self.strokes:
            raise BoardError("a stroke with this id exists already")
        if len(stroke.points) // 2 > self.limits.max_points_per_stroke:
            raise BoardError(f"a stroke has at most {self.limits.max_points_per_stroke} points")
        self.check_room(extra_points=len(stroke.points) // 2)
        changes = BoardChanges()
        self.strokes[stroke.id] = stroke
        self.visible[stroke.id] = True
        changes.added.append(stroke)
        self._record(stroke.author, "draw", (Change(stroke.id, False, True),), changes)
        return changes

    def erase(self, role: Role, stroke_ids: list[str]) -> BoardChanges:
        """Hide the given strokes (anyone's) of the current sheet; one action of `role`."""
        for stroke_id in stroke_ids:
            stroke = self.strokes.get(stroke_id)
            if stroke is None or stroke.sheet != self.sheet:
                raise BoardError("no such stroke on this page")
        targets = [i for i in dict.fromkeys(stroke_ids) if self.visible[i]]  # already gone: the other side erased it too
        return self._hide(role, "erase", targets)

    def clear(self, role: Role) -> BoardChanges:
        """Hide every stroke of the current sheet, as one action `role` can undo."""
        return self._hide(role, "clear", [s.id for s in self.visible_strokes() if s.sheet == self.sheet])

    def _hide(self, role: Role, kind: ActionKind, targets: list[str]) -> BoardChanges:
        changes = BoardChanges()
        if not targets:
            return changes
        for stroke_id in targets:
            self.visible[stroke_id] = False
        changes.hidden.extend(targets)
        self._record(role, kind, tuple(Change(i, True, False) for i in targets), changes)
        return changes

    # history

    def undo(self, role: Role) -> BoardChanges:
        if not self._done[role]:
            raise NothingToUndo("nothing to undo")
        changes = self._apply(self._done[role][-1], undo=True)
        action = self._done[role].pop()
        undone = dataclasses.replace(action, undone=True)
        self._redo[role].append(undone)
        changes.saved_actions.append(undone)
        return changes

    def redo(self, role: Role) -> BoardChanges:
        if not self._redo[role]:
            raise NothingToUndo("nothing to redo")
        changes = self._apply(self._redo[role][-1], undo=False)
        action = self._redo[role].pop()
        done = dataclasses.replace(action, undone=False)
        self._done[role].append(done)
        changes.saved_actions.append(done)
        return changes

    def _apply(self, action: Action, *, undo: bool) -> BoardChanges:
        """Move each stroke back (or forward), unless someone else changed it since."""
        changes = BoardChanges()
        moves: list[tuple[str, bool]] = []
        for change in action.changes:
            want_now, want_then = (change.after, change.before) if undo else (change.before, change.after)
            if change.stroke_id in self.visible and self.visible[change.stroke_id] == want_now:
                moves.append((change.stroke_id, want_then))
        shown = [i for i, then in moves if then]
        if shown and sum(self.visible.values()) + len(shown) > self.limits.max_strokes:
            raise BoardFull(f"the board holds at most {self.limits.max_strokes} strokes: erase or clear first")
        if shown and self.points_shown() + sum(len(self.strokes[i].points) // 2 for i in shown) > self.limits.max_points:
            raise BoardFull(f"the board holds at most {self.limits.max_points} points: erase or clear first")
        for stroke_id, then in moves:
            self.visible[stroke_id] = then
            (changes.shown if then else changes.hidden).append(stroke_id)
        return changes

    def _record(self, role: Role, kind: ActionKind, items: tuple[Change, ...], changes: BoardChanges) -> None:
        """A new action: it ends the redo history of `role` and may push the oldest action out."""
        self._seq += 1
        action = Action(role, self._seq, kind, items)
        changes.dropped_actions.extend(self._redo[role])
        self._redo[role].clear()
        self._done[role].append(action)
        changes.saved_actions.append(action)
        while len(self._done[role]) > self.limits.undo_depth:
            changes.dropped_actions.append(self._done[role].pop(0))
        self._forget_unreachable(changes)

    def _forget_unreachable(self, changes: BoardChanges) -> None:
        """Delete hidden strokes that no remaining action can show again."""
        if not changes.dropped_actions:
            return
        reachable = {c.stroke_id for stacks in (self._done, self._redo)
                     for actions in stacks.values() for a in actions for c in a.changes}
        for stroke_id in [i for i, shown in self.visible.items() if not shown and i not in reachable]:
            del self.strokes[stroke_id]
            del self.visible[stroke_id]
            changes.deleted.append(stroke_id)
