"""The whiteboard of one live consultation: drawing messages, relay, persistence, pointer.

The board itself (strokes, pages, undo/redo) is `clinic.board.Board`; this module
checks the messages, streams strokes being drawn to the other side, saves each
finished change through the clinic before telling both sides, and relays the
pointer (rate-limited, never stored).
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from clinic import Clinic, Role, Stage
from clinic.board import Background, Board, BoardChanges, BoardError, Stroke, check_pen, check_points, check_stroke_id
from clinic.boardimages import BoardImages

from ..config import WhiteboardConfig
from ..errors import ProtocolError
from .lobby import other
from .protocol import ClientMessage

logger = logging.getLogger(__name__)

#: Messages handled here (see docs/protocol.md).
MESSAGE_TYPES = frozenset({
    "whiteboard-open", "whiteboard-stroke", "whiteboard-erase", "whiteboard-undo", "whiteboard-redo",
    "whiteboard-clear", "whiteboard-page", "whiteboard-background-remove", "whiteboard-save", "pointer",
})
# pointer messages are checked and relayed but never touch the board or its lock
_MAX_ERASE = 1000


class Peer(Protocol):
    """What the whiteboard needs of a connection (hub.Connection has it)."""

    role: Role

    async def send(self, message: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class LiveStroke:
    """A stroke being drawn: relayed as it grows, saved when it ends."""

    id: str
    author: Role
    sheet: str
    color: str
    width: float
    points: list[float] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "author": self.author.value, "sheet": self.sheet, "color": self.color,
                "width": self.width, "points": list(self.points)}


SavePng = Callable[[bytes], Awaitable[str]]
#: Saves a board may take per minute: each is a server-side render and a stored document.
SAVES_PER_MINUTE = 10


class Whiteboard:
    """One consultation's board while someone is connected; every change saved before it is shown."""

    def __init__(self, consultation_id: str, board: Board, clinic: Clinic, config: WhiteboardConfig, *,
                 connections: dict[Role, Any], stage: Callable[[Role], Stage],
                 images: BoardImages | None = None, save_png: SavePng | None = None) -> None:
        self.id = consultation_id
        self.board = board
        self._clinic = clinic
        self._config = config
        self._connections = connections  # the hub's own dict: who is connected now
        self._stage = stage
        self._images = images
        self._save_png = save_png
        self._live: dict[Role, LiveStroke] = {}
        self._pointer_times: dict[Role, collections.deque[float]] = {r: collections.deque() for r in Role}
        self._save_times: collections.deque[float] = collections.deque()
        self._saving = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Whiteboard({self.id})"

    # connections

    def full(self, role: Role) -> dict[str, Any]:
        """Everything a (re)joining side needs to draw the board."""
        return {
            "type": "whiteboard", **self.board.settings_json(),
            "strokes": [s.as_json() for s in self.board.visible_strokes()],
            "live": [s.as_json() for s in self._live.values()],
            "can_undo": self.board.can_undo(role), "can_redo": self.board.can_redo(role),
        }

    async def attach(self, conn: Peer) -> None:
        await _deliver(conn, self.full(conn.role))

    async def detach(self, role: Role) -> None:
        """A side left: its stroke in progress is kept as drawn so far, its pointer hidden."""
        async with self._lock:
            try:
                await self._finish_live(role)
            except BoardError:
                pass  # the board filled up meanwhile: the stroke is dropped on both sides
        await self._send(other(role), {"type": "pointer", "role": role.value, "x": None, "y": None})

    # messages

    async def handle(self, conn: Peer, msg: ClientMessage, size: int) -> None:
        """Apply one whiteboard message of `conn`, or raise ProtocolError (nothing changed then)."""
        if size > self._config.max_message_bytes:
            raise ProtocolError("too-large", f"a whiteboard message has at most {self._config.max_message_bytes} bytes")
        if self._connections.get(conn.role) is not conn:
            raise ProtocolError("out-of-order", "this tab was replaced by another one")
        if self._stage(conn.role) is not Stage.IN_CALL:
            raise ProtocolError("out-of-order", "the whiteboard is only available in the call")
        f = msg.fields
        if msg.type == "pointer":
            await self._pointer(conn.role, f["x"], f["y"])
            return
        if msg.type == "whiteboard-save":
            await self._save(conn.role)
            return
        async with self._lock:
            try:
                if msg.type == "whiteboard-open":
                    await self._apply(self.board.set_open(bool(f["open"])))
                    return
                if not self.board.is_open:
                    raise ProtocolError("out-of-order", "the whiteboard is closed")
                if msg.type == "whiteboard-stroke":
                    await self._stroke(conn.role, f)
                elif msg.type == "whiteboard-erase":
                    await self._apply(self.board.erase(conn.role, _stroke_ids(f["strokes"])))
                elif msg.type == "whiteboard-undo":
                    await self._finish_live(conn.role)
                    await self._apply(self.board.undo(conn.role))
                elif msg.type == "whiteboard-redo":
                    await self._apply(self.board.redo(conn.role))
                elif msg.type == "whiteboard-clear":
                    await self._finish_live(conn.role)
                    await self._apply(self.board.clear(conn.role))
                elif msg.type == "whiteboard-page":
                    self.board.set_page(f["page"])  # checked first: a bad page changes nothing
                    await self._finish_all()
                    await self._apply(self.board.set_page(f["page"]))
                elif msg.type == "whiteboard-background-remove":
                    await self._finish_all()
                    await self._apply(self.board.set_background(None))
            except BoardError as exc:
                raise ProtocolError("bad-message" if msg.type in ("whiteboard-stroke", "whiteboard-erase",
                                    "whiteboard-page") else "out-of-order", f"'{msg.type}': {exc}") from None

    async def set_background(self, background: Background) -> None:
        """A document uploaded over HTTP becomes the board's background (page 1), for both sides."""
        async with self._lock:
            await self._finish_all()
            changes = self.board.set_background(background)
            if not self.board.is_open:
                changes.settings = True
                self.board.is_open = True
            await self._apply(changes)

    # drawing

    async def _stroke(self, role: Role, f: dict[str, Any]) -> None:
        stroke_id = check_stroke_id(f["stroke"])
        check_pen(f["color"], f["width"])
        points = check_points(f["points"])
        if f["page"] != self.board.page:
            raise BoardError("the page changed meanwhile")
        if not points and not f["end"]:
            raise BoardError("a stroke message needs points (or 'end': true)")
        live = self._live.get(role)
        if live is not None and live.id != stroke_id:
            await self._finish_live(role)  # a new stroke ends the previous one
            live = None
        if live is None:
            if not points:
                raise BoardError("a stroke message needs points")
            if stroke_id in self.board.strokes or any(s.id == stroke_id for s in self._live.values()):
                raise BoardError("a stroke with this id exists already")
            live = LiveStroke(stroke_id, role, self.board.sheet, f["color"], float(f["width"]))
        elif (live.color, live.width) != (f["color"], float(f["width"])):
            raise BoardError("a stroke keeps its colour and width")
        if (len(live.points) + len(points)) // 2 > self._config.max_points_per_stroke:
            raise BoardError(f"a stroke has at most {self._config.max_points_per_stroke} points")
        others = [s for r, s in self._live.items() if r is not role]
        self.board.check_room(extra_live=len(others),
                              extra_points=(sum(len(s.points) for s in [*others, live]) + len(points)) // 2)
        live.points.extend(points)
        self._live[role] = live
        await self._send(other(role), {"type": "whiteboard-live", "stroke": live.id, "author": role.value,
                                       "sheet": live.sheet, "color": live.color, "width": live.width,
                                       "points": list(points), "end": bool(f["end"])})
        if f["end"]:
            del self._live[role]
            await self._commit(live)

    async def _finish_all(self) -> None:
        """Strokes in progress end where they are before the page changes under them."""
        for role in list(self._live):
            try:
                await self._finish_live(role)
            except BoardError:
                pass  # it no longer fits: dropped on both sides (see _commit)

    async def _finish_live(self, role: Role) -> None:
        live = self._live.pop(role, None)
        if live is not None and live.points:
            await self._commit(live)

    async def _commit(self, live: LiveStroke) -> None:
        """A finished stroke joins the board; if it no longer fits, both sides drop it."""
        if not live.points:
            return
        try:
            changes = self.board.add_stroke(Stroke(live.id, live.author, live.sheet, live.color, live.width,
                                                   tuple(live.points)))
        except BoardError as exc:
            logger.info("%r stroke of %s dropped: %s", self, live.author.value, exc)
            await self._publish(BoardChanges(deleted=[live.id]))
            raise
        await self._apply(changes)

    async def _apply(self, changes: BoardChanges) -> None:
        if changes.empty:
            return
        await self._clinic.save_board(self.id, self.board, changes)
        await self._publish(changes)

    async def _publish(self, changes: BoardChanges) -> None:
        shown = [self.board.strokes[i] for i in changes.shown if i in self.board.strokes]
        for role in list(self._connections):
            await self._send(role, {
                "type": "whiteboard-changes", **self.board.settings_json(),
                "add": [s.as_json() for s in [*changes.added, *shown]],
                "remove": [*changes.hidden, *changes.deleted],
                "can_undo": self.board.can_undo(role), "can_redo": self.board.can_redo(role),
            })

    async def _send(self, role: Role, message: dict[str, Any]) -> None:
        conn = self._connections.get(role)
        if conn is not None:
            await _deliver(conn, message)

    # pointer and saving

    async def _pointer(self, role: Role, x: float | None, y: float | None) -> None:
        if (x is None) != (y is None):
            raise ProtocolError("bad-message", "'pointer': x and y are both numbers or both null")
        if x is not None and y is not None and not (0.0 <= x <= 1.0 and 0.0 <= y <= 1.0):
            raise ProtocolError("bad-message", "'pointer': x and y are fractions of the board, between 0 and 1")
        if not self.board.is_open:
            raise ProtocolError("out-of-order", "the whiteboard is closed")
        now = time.monotonic()
        times = self._pointer_times[role]
        while times and now - times[0] >= 1.0:
            times.popleft()
        if x is not None and len(times) >= self._config.pointer_rate:
            return  # over the rate: dropped (the next one carries a newer position anyway)
        times.append(now)
        await self._send(other(role), {"type": "pointer", "role": role.value, "sheet": self.board.sheet,
                                       "x": None if x is None else round(x, 5), "y": None if y is None else round(y, 5)})

    async def _save(self, role: Role) -> None:
        if role is not Role.PRACTITIONER:
            raise ProtocolError("forbidden", "only the practitioner can save the board")
        if self._images is None or self._save_png is None:
            raise ProtocolError("internal", "saving the board is not available on this server")
        # one render at a time, SAVES_PER_MINUTE at most: a repeated click (or a script) must
        # not queue renders on the server's threads nor fill the record with copies
        now = time.monotonic()
        times = self._save_times
        while times and now - times[0] > 60:
            times.popleft()
        if self._saving:
            raise ProtocolError("rate-limited", "the board is being saved; wait for whiteboard-saved")
        if len(times) >= SAVES_PER_MINUTE:
            raise ProtocolError("rate-limited", f"the board can be saved {SAVES_PER_MINUTE} times a minute; wait a moment")
        times.append(now)
        self._saving = True
        try:
            async with self._lock:
                strokes = [s for s in self.board.visible_strokes() if s.sheet == self.board.sheet]
                background, page = self.board.background, self.board.page
            png = await self._images.board_png(self.id, background, page, strokes)
            document_id = await self._save_png(png)
        finally:
            self._saving = False
        logger.info("%r saved as document %s", self, document_id)
        await self._send(role, {"type": "whiteboard-saved", "document_id": document_id})


#: Above this many coordinates a message is serialised in a thread (a full board is megabytes of JSON).
HEAVY_COORDINATES = 10000


async def _deliver(conn: Any, message: dict[str, Any]) -> None:
    """Send a message; a big one is turned into JSON off the event loop (the strokes in it are immutable)."""
    strokes = [*message.get("strokes", ()), *message.get("live", ()), *message.get("add", ())]
    if sum(len(s["points"]) for s in strokes) < HEAVY_COORDINATES or not hasattr(conn, "send_text"):
        await conn.send(message)
        return
    await conn.send_text(await asyncio.to_thread(json.dumps, message))


def _stroke_ids(raw: list[Any]) -> list[str]:
    if not raw or len(raw) > _MAX_ERASE or not all(isinstance(i, str) for i in raw):
        raise BoardError(f"'strokes' is a list of 1 to {_MAX_ERASE} stroke ids")
    return [check_stroke_id(i) for i in raw]


def document_saver(clinic: Clinic, images: BoardImages, consultation_id: str) -> SavePng:
    """Store a saved board's PNG as a document of the consultation (source 'whiteboard'); returns its id."""

    async def save(png: bytes) -> str:
        folder = images.folder(consultation_id)
        path = folder / f".save-{uuid.uuid4().hex}.png"

        def write() -> None:
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)

        await asyncio.to_thread(write)
        try:
            name = datetime.datetime.now(datetime.UTC).strftime("tableau-%Y-%m-%d-%H%M%S.png")
            document = await clinic.add_document_file(consultation_id, "whiteboard", name, "practitioner", path)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        return document.id

    return save
