"""The whiteboard model (clinic/board.py): strokes, per-author undo/redo, clear, erase, limits, storage."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from helpers.databases import TestDatabase, consultation_now

from clinic import Role
from clinic.board import (
    Background,
    Board,
    BoardError,
    BoardFull,
    BoardLimits,
    NothingToUndo,
    Stroke,
    check_pen,
    check_points,
    check_stroke_id,
)

DOC, PAT = Role.PRACTITIONER, Role.PATIENT


def s(sid: str, author: Role = DOC, sheet: str = "blank", points: tuple[float, ...] = (0.1, 0.1, 0.2, 0.2)) -> Stroke:
    return Stroke(sid, author, sheet, "#c62828", 0.01, points)


def visible(board: Board) -> list[str]:
    return [x.id for x in board.visible_strokes()]


def test_undo_and_redo_touch_only_ones_own_actions() -> None:
    board = Board(BoardLimits())
    board.add_stroke(s("d1"))
    board.add_stroke(s("p1", PAT))
    board.add_stroke(s("d2"))
    changes = board.undo(PAT)
    assert changes.hidden == ["p1"] and visible(board) == ["d1", "d2"]
    assert board.can_redo(PAT) and not board.can_redo(DOC)
    with pytest.raises(NothingToUndo):
        board.undo(PAT)
    board.undo(DOC)
    assert visible(board) == ["d1"]
    board.redo(PAT)
    assert visible(board) == ["d1", "p1"]
    # a new action ends the redo history: d2 can never come back, so it is deleted
    changes = board.add_stroke(s("d3"))
    assert changes.deleted == ["d2"] and [a.seq for a in changes.dropped_actions] == [3]
    assert not board.can_redo(DOC)
    with pytest.raises(NothingToUndo):
        board.redo(DOC)


def test_clear_is_one_undoable_action_of_whoever_cleared() -> None:
    board = Board(BoardLimits())
    board.add_stroke(s("d1"))
    board.add_stroke(s("p1", PAT))
    board.add_stroke(s("other-page", PAT, sheet="bg/1"))
    changes = board.clear(PAT)
    assert sorted(changes.hidden) == ["d1", "p1"] and visible(board) == ["other-page"]
    # the practitioner's undo is about its own stroke, which the clear already hid: nothing changes
    assert board.undo(DOC).hidden == []
    board.undo(PAT)  # the clear
    # the clear's undo brings back what the clear hid (the practitioner's undo found d1 already hidden)
    assert visible(board) == ["d1", "p1", "other-page"]
    assert board.clear(DOC).hidden == ["d1", "p1"]
    assert board.clear(DOC).empty  # a clear of an empty page is no action


def test_erase_hides_anyones_stroke_on_this_page_and_refuses_the_rest() -> None:
    board = Board(BoardLimits())
    board.add_stroke(s("d1"))
    board.add_stroke(s("p1", PAT))
    board.add_stroke(s("far", sheet="bg/0"))
    assert board.erase(PAT, ["d1", "d1"]).hidden == ["d1"]
    assert board.erase(DOC, ["d1"]).empty  # already erased by the other side: no action
    for bad in (["nope"], ["far"]):
        with pytest.raises(BoardError, match="no such stroke"):
            board.erase(DOC, bad)
    board.undo(PAT)
    assert visible(board) == ["d1", "p1", "far"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"id": "a b"}, "stroke id"),
        ({"id": ""}, "stroke id"),
        ({"color": "#123456"}, "colour"),
        ({"width": 0.0}, "width"),
        ({"width": 0.2}, "width"),
        ({"points": ()}, "at least one point"),
        ({"points": (0.1,)}, "pairs"),
        ({"points": (0.1, 1.01)}, "between 0 and 1"),
        ({"points": (float("nan"), 0.1)}, "between 0 and 1"),
        ({"points": (True, 0.1)}, "between 0 and 1"),
    ],
)
def test_a_bad_stroke_is_refused(kwargs: dict[str, Any], message: str) -> None:
    fields: dict[str, Any] = {"id": "ok", "author": DOC, "sheet": "blank", "color": "#c62828", "width": 0.01,
                              "points": (0.5, 0.5), **kwargs}
    with pytest.raises(BoardError, match=message):
        Stroke(**fields)


def test_checks_round_and_accept_the_edges() -> None:
    assert check_points([0, 1, 0.123456789, 1.0]) == (0.0, 1.0, 0.12346, 1.0)
    assert check_stroke_id("s-AZ_09") == "s-AZ_09"
    check_pen("#ffffff", 0.05)
    with pytest.raises(BoardError):
        check_pen("#ffffff", 0.051)


def test_limits_strokes_points_and_history() -> None:
    board = Board(BoardLimits(max_points_per_stroke=3, max_strokes=2, undo_depth=2))
    with pytest.raises(BoardError, match="3 points"):
        board.add_stroke(s("long", points=(0.1,) * 8))
    board.add_stroke(s("a"))
    board.add_stroke(s("b"))
    with pytest.raises(BoardFull):
        board.add_stroke(s("c"))
    assert visible(board) == ["a", "b"] and not board.can_redo(DOC)
    board.erase(DOC, ["a"])  # 3 actions, depth 2: the oldest (draw a) is forgotten
    assert board.undo(DOC).shown == ["a"]
    board.undo(DOC)
    with pytest.raises(NothingToUndo):
        board.undo(DOC)
    assert visible(board) == ["a"]


def test_a_redo_past_the_stroke_limit_is_refused_without_change() -> None:
    board = Board(BoardLimits(max_strokes=1))
    board.add_stroke(s("a"))
    board.undo(DOC)
    board.add_stroke(s("p", PAT))
    with pytest.raises(BoardFull):
        board.redo(DOC)
    assert visible(board) == ["p"] and board.can_redo(DOC)


def test_pages_and_background() -> None:
    board = Board(BoardLimits())
    with pytest.raises(BoardError, match="page"):
        board.set_page(1)
    bg = Background("b" * 32, "pdf", ((800, 600), (600, 800)))
    board.set_background(bg)
    assert board.sheet == f"{'b' * 32}/0"
    board.set_page(1)
    assert board.sheet == f"{'b' * 32}/1" and board.settings_json()["background"]["sizes"] == [[800, 600], [600, 800]]
    with pytest.raises(BoardError):
        board.set_page(2)
    board.set_background(None)
    assert (board.sheet, board.page) == ("blank", 0)


async def test_the_store_brings_back_strokes_and_each_sides_history(database: TestDatabase) -> None:
    clinic = await database.open(datetime.timedelta(hours=1))
    try:
        cid = await consultation_now(clinic)
        limits = BoardLimits(undo_depth=2)
        board = await clinic.load_board(cid, limits)
        assert (board.is_open, visible(board)) == (False, [])
        bg = Background("c" * 32, "image", ((640, 480),))
        await clinic.add_board_background(cid, bg)
        for change in (board.set_open(True), board.set_background(bg), board.add_stroke(s("d1", sheet=board.sheet)),
                       board.add_stroke(s("p1", PAT, sheet=board.sheet)), board.add_stroke(s("d2", sheet=board.sheet)),
                       board.add_stroke(s("d3", sheet=board.sheet)), board.undo(DOC), board.clear(PAT)):
            await clinic.save_board(cid, board, change)
        again = await clinic.load_board(cid, limits)
        assert (again.is_open, again.background, again.page) == (True, bg, 0)
        assert again.strokes == board.strokes and again.visible == board.visible
        for role in Role:
            assert (again.can_undo(role), again.can_redo(role)) == (board.can_undo(role), board.can_redo(role))
        # the histories behave the same after the reload
        for b in (board, again):
            b.undo(PAT)
            b.redo(DOC)
        assert visible(again) == visible(board) == ["d1", "p1", "d2", "d3"]
        assert await clinic.get_board_background(cid, bg.id) == bg
    finally:
        await clinic.close()


def test_points_shown_together_are_bounded() -> None:
    board = Board(BoardLimits(max_points=5))
    board.add_stroke(s("a", points=(0.1,) * 6))
    with pytest.raises(BoardFull, match="5 points"):
        board.add_stroke(s("b", points=(0.1,) * 6))
    board.add_stroke(s("b", points=(0.1,) * 4))
    board.undo(DOC)
    board.add_stroke(s("c", PAT, points=(0.2,) * 4))
    with pytest.raises(BoardFull, match="5 points"):
        board.redo(DOC)  # b would not fit beside a and c
    assert board.points_shown() == 5
