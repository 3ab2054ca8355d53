"""A recording whose recorder runs in the media worker that holds the consultation's room.

`RemoteRecorder` has the calls `RecordingControl` and `RecordingService` make
on a `Recorder` (start, attach, note_tracks, stop, wait_closed, id, directory),
carried as messages to recorder/worker.py.  Its files are those the in-process
recorder writes (the worker runs the same `Recorder` with the same key ring),
in the folder the server names; the server composes them.

A recording is written in **parts**, normally one.  A new part begins when the
recording cannot go on in the worker that held it:

- the worker died (crash, `kill -9`): what it wrote is kept and composed like a
  recording a server crash left behind (its manifest still says "recording";
  the compositor reads the tracks as far as they go), and as soon as the
  room is placed again (`RemoteRoom` "moved") the recording goes on in the new
  worker as a new part, with a new recording id and its own folder;
- the consultation's room was made again on another worker (it never is while a
  recording runs: the pool keeps it on the recorder's worker, `WorkerPool.pin`,
  unless that worker is gone): the part is stopped cleanly and composed.

Each part is one composed MP4 (one document of the consultation); the audit log
has "recording.stop" (by the server) for the part that ended and
"recording.start" (by the server) for the next.  The browsers' recording state
(id, notice) does not change: the consultation is still being recorded.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sfu.remote import Channel, RemoteRoom, Worker, WorkerPool

from .manifest import Manifest

logger = logging.getLogger(__name__)

#: a part ended that is not the recording's end (`part.closed` tells when its files are complete)
PartEnded = Callable[["Part"], None]
#: part id: a new part began (after the first)
PartStarted = Callable[[str], None]


@dataclass
class Part:
    """One recorder in one worker."""

    id: str
    folder: Path
    worker: Worker
    channel: Channel
    closed: asyncio.Future[dict[str, Any] | None]
    #: its worker died before the files were complete
    lost: bool = False
    #: given to `part_ended` (composed there, not by `RecordingService.finish`)
    handed: bool = False
    manifest: dict[str, Any] | None = field(default=None)


class RemoteRecorder:
    """One consultation's recording, recorded in the worker holding its room."""

    def __init__(self, id: str, consultation_id: str, folder: Callable[[str], Path], pool: WorkerPool, *,
                 part_ended: PartEnded | None = None, part_started: PartStarted | None = None) -> None:
        self.first_id = id
        self.consultation_id = consultation_id  # also its room's id
        self._folder = folder
        self._part_ended = part_ended
        self._part_started = part_started
        self.stopped = False
        self.started = False
        self.parts: list[Part] = []
        self._current: Part | None = None
        self._room: RemoteRoom | None = None
        self._pool = pool
        pool.on("recording-closed", self._on_closed)
        self._tracks: dict[str, dict[str, bool]] = {}
        self.dropped = 0

    def __repr__(self) -> str:
        return f"RemoteRecorder({self.id})"

    @property
    def id(self) -> str:
        """The id of the part being (or last) written."""
        return self.parts[-1].id if self.parts else self.first_id

    @property
    def directory(self) -> Path:
        return self.parts[-1].folder if self.parts else self._folder(self.first_id)

    @property
    def final_folder(self) -> Path | None:
        """The folder `RecordingService.finish` composes: the last part's, unless already handed on."""
        return self.parts[-1].folder if self.parts and not self.parts[-1].handed else None

    def start(self) -> None:
        """Begin writing (in the worker of the room attached right after, or, if the consultation has no
        room yet, in the one its room will be placed on): as in process, the folder and manifest exist
        from the start even if no media ever comes."""
        self.started = True
        asyncio.get_running_loop().call_soon(self._follow)

    def attach(self, room: Any) -> None:
        """Record `room` (a `RemoteRoom`) from now on, in its worker."""
        if self.stopped or room is self._room or not isinstance(room, RemoteRoom):
            return
        if self._room is not None:
            self._room.remove_listener("moved", self._moved)
        self._room = room
        room.on("moved", self._moved)
        if self.started:
            self._follow()

    def note_tracks(self, role: str, tracks: dict[str, bool]) -> None:
        if self.stopped or self._tracks.get(role) == tracks:
            return
        self._tracks[role] = dict(tracks)
        part = self._current
        if part is not None and not part.channel.closed:
            part.channel.send("record-tracks", recording=part.id, role=role, tracks=tracks)

    def stop(self) -> None:
        """Stop writing; the worker completes the files (`wait_closed`).  Safe to call twice."""
        if self.stopped:
            return
        self.stopped = True
        if self._room is not None:
            self._room.remove_listener("moved", self._moved)
        self._pool.pin(self.consultation_id, None)
        if self._current is not None:
            self._end(self._current)
            self._current = None

    async def wait_closed(self) -> Manifest | None:
        """Wait until the last part's files are complete (or its worker died); its manifest, if it said."""
        data = await asyncio.shield(self.parts[-1].closed) if self.parts else None
        if all(p.closed.done() for p in self.parts):
            self._pool.remove_listener("recording-closed", self._on_closed)
        return None if data is None else Manifest.from_json(dict(data))

    # --- internals

    def _follow(self) -> None:
        """Make the recording run in the worker holding the room (no room: where it will be placed):
        go on, or end the part and begin one."""
        if self.stopped or not self.started:
            return
        part = self._current
        room = self._room if self._room is not None and not self._room.closed else None
        if room is not None:
            if room.worker is None:
                return
            worker = room.worker
        elif part is not None and not part.channel.closed:
            return  # no room for now: the part goes on, its worker keeps the next room (pinned)
        else:
            worker = self._pool.choose(self.consultation_id)
        channel = worker.channel
        if channel is None or channel.closed:
            return  # dead: "moved" comes once the room is placed again
        if part is not None and part.channel is channel:
            if room is not None:
                channel.send("record-attach", recording=part.id, room=room.id)
            return
        if part is not None:  # its worker died, or the room is elsewhere
            self._end(part)
            self._current = None
        first = not self.parts
        part_id = self.first_id if first else uuid.uuid4().hex
        loop = asyncio.get_running_loop()
        part = Part(part_id, self._folder(part_id), worker, channel, loop.create_future())
        self.parts.append(part)
        self._current = part
        self._pool.pin(self.consultation_id, worker)
        channel.send("record", recording=part_id, consultation=self.consultation_id, folder=str(part.folder),
                     room=self.consultation_id, tracks=self._tracks)
        channel.done.add_done_callback(functools.partial(self._channel_ended, part))
        logger.info("%r recording in media worker %d%s", self, worker.index, "" if first else " (a new part)")
        if not first and self._part_started is not None:
            self._part_started(part_id)

    def _end(self, part: Part) -> None:
        """End `part`: stopped cleanly if its worker lives, else taken as it is."""
        if not part.channel.closed and not part.closed.done():
            part.channel.send("record-stop", recording=part.id)
        else:
            self._lose(part)
        if part is not self.parts[-1] or not self.stopped:
            # not the recording's end (RecordingService.finish composes that one): compose this part
            self._hand(part)

    def _hand(self, part: Part) -> None:
        if not part.handed:
            part.handed = True
            if self._part_ended is not None:
                self._part_ended(part)

    def _lose(self, part: Part) -> None:
        if not part.closed.done():
            part.lost = True
            part.closed.set_result(None)
            logger.warning("%r: media worker %d died while recording part %s; what it wrote is kept",
                           self, part.worker.index, part.id)

    def _channel_ended(self, part: Part, _done: object = None) -> None:
        """The channel of `part`'s worker closed: if it was still writing, that part is lost."""
        if part.closed.done():
            return
        if part is self._current:
            self._current = None
            self._lose(part)
            self._hand(part)
            self._follow()  # already placed again: go on there (else "moved" will)
        else:
            self._lose(part)

    def _moved(self) -> None:
        """The room was placed again after its worker died."""
        self._follow()

    def _on_closed(self, worker: Worker, message: dict[str, Any]) -> None:
        for part in self.parts:
            if part.id == message.get("recording") and part.worker is worker and not part.closed.done():
                if message.get("error"):
                    logger.error("%r part %s: %s", self, part.id, message["error"])
                self.dropped += int(message.get("dropped") or 0)
                part.manifest = message.get("manifest")
                part.closed.set_result(part.manifest)
