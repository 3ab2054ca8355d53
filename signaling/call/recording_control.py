"""One consultation's recording: who may start it, consent, the notice rule (docs/protocol.md).

States: off -> (consent ->) notice -> recording -> off.  While `notice`, the
other side has been shown the indicator but nothing is written: writing starts
when the other side's tab acknowledges the notice (`recording-seen`), or at once
if the other side is not connected, once every connected tab was sent it.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid
from collections.abc import Callable
from typing import Any

from clinic import Role, Stage
from recorder import Recorder
from recorder.remote import RemoteRecorder
from sfu import Room
from sfu.remote import RemoteRoom

from ..config import RecordingConfig
from ..errors import ProtocolError
from ..recording_service import RecordingService
from .lobby import other

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class RecordingEffects:
    """What a step asks of the hub once its lock is released."""

    #: messages for one side only (e.g. `recording-refused` to the side that asked)
    replies: list[tuple[Role, dict[str, Any]]] = dataclasses.field(default_factory=list)
    #: system chat lines (key, params)
    announcements: list[tuple[str, dict[str, str]]] = dataclasses.field(default_factory=list)
    #: audit entries (action, recording id, role or None for the server)
    audits: list[tuple[str, str, str | None]] = dataclasses.field(default_factory=list)
    #: writing began: both sides must be sent the new state
    began: bool = False

    def add(self, other: RecordingEffects) -> RecordingEffects:
        self.replies += other.replies
        self.announcements += other.announcements
        self.audits += other.audits
        self.began = self.began or other.began
        return self


class RecordingControl:
    """The recording state of one consultation; every method runs under its hub's lock.

    It sees the hub only through the callbacks it is given (like ChatRoom and
    Whiteboard) and returns its effects instead of acting on the hub.
    """

    def __init__(self, consultation_id: str, config: RecordingConfig, service: RecordingService | None, *,
                 stage: Callable[[Role], Stage], connected: Callable[[Role], bool],
                 room: Callable[[], Room | RemoteRoom | None], tracks: Callable[[Role], dict[str, bool]]) -> None:
        self.consultation_id = consultation_id
        self._config = config
        self._service = service
        self._stage = stage
        self._connected = connected
        self._room = room
        self._tracks = tracks
        self.state = "off"
        self.id: str | None = None
        self.by: Role | None = None
        self.since: str | None = None
        # in this process, or in the media worker holding the room ([sfu] workers > 1)
        self.recorder: Recorder | RemoteRecorder | None = None

    def __repr__(self) -> str:
        return f"RecordingControl({self.consultation_id})"

    def allowed(self, role: Role) -> bool:
        return self._service is not None and role.value in self._config.allowed_roles

    def snapshot(self) -> dict[str, Any] | None:
        if self.state == "off" or self.by is None:
            return None
        return {"id": self.id, "state": self.state, "by": self.by.value, "since": self.since}

    # --- messages (validated fields)

    def record(self, role: Role, on: bool) -> RecordingEffects:
        """`record` from `role`: start (maybe asking consent first) or stop."""
        effects = RecordingEffects()
        if not self.allowed(role):
            raise ProtocolError("not-allowed", "your role may not start or stop a recording")
        if not on:
            if self.state != "off":
                self._stop(f"stopped by the {role.value}", role, effects)
            return effects
        if self.state != "off":
            raise ProtocolError("out-of-order", f"a recording is already {self.state}")
        if self._stage(role) is not Stage.IN_CALL:
            raise ProtocolError("out-of-order", "a recording can only start in the call")
        self.id, self.by = uuid.uuid4().hex, role
        self.state = "consent" if self._config.require_consent else "notice"
        logger.info("%r recording %s requested by %s (%s)", self, self.id, role.value, self.state)
        return effects

    def consent(self, role: Role, recording_id: str, accept: bool) -> RecordingEffects:
        """The other side's answer to a consent request."""
        if self.state != "consent" or recording_id != self.id:
            raise ProtocolError("out-of-order", "no recording is waiting for your consent")
        assert self.by is not None
        if role is self.by:
            raise ProtocolError("not-allowed", "the other side must consent")
        if accept:
            self.state = "notice"
            logger.info("%r recording %s accepted", self, self.id)
            return RecordingEffects()
        logger.info("%r recording %s refused", self, self.id)
        asker = self.by
        self._reset()
        return RecordingEffects(replies=[(asker, {"type": "recording-refused", "id": recording_id})])

    def seen(self, role: Role, recording_id: str) -> RecordingEffects:
        """A tab acknowledged the notice; the other side's ack starts the writing."""
        effects = RecordingEffects()
        if self.state == "notice" and recording_id == self.id and role is not self.by:
            self._begin(effects)
        return effects

    # --- hub events

    def after_broadcast(self) -> RecordingEffects:
        """Every connected tab was sent the state: start if the other side is not there to ack."""
        effects = RecordingEffects()
        if self.state == "notice" and self.by is not None and not self._connected(other(self.by)):
            self._begin(effects)
        return effects

    def attach_room(self, room: Room | RemoteRoom) -> None:
        if self.recorder is not None:
            self._attach(self.recorder, room)

    def note_tracks(self, role: Role, tracks: dict[str, bool]) -> None:
        if self.recorder is not None:
            self.recorder.note_tracks(role.value, tracks)

    def disk_full(self) -> RecordingEffects | None:
        """The data directory is short of space: stop now, keeping what was written; None if none ran."""
        if self.state == "off":
            return None
        effects = RecordingEffects()
        self._stop("stopped: the disk is short of space", None, effects, "recording-stopped-disk-full")
        return effects

    def close(self) -> RecordingEffects:
        """The call ended or the hub is going away."""
        effects = RecordingEffects()
        if self.state != "off":
            self._stop("the call ended", None, effects)
        return effects

    # --- internals

    def _begin(self, effects: RecordingEffects) -> None:
        assert self._service is not None and self.id is not None
        self.state = "recording"
        self.since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        recorder = self.recorder = self._service.new_recorder(self.consultation_id, self.id)
        recorder.start()
        room = self._room()
        if room is not None and not room.closed:
            self._attach(recorder, room)
        for side in Role:
            recorder.note_tracks(side.value, self._tracks(side))
        effects.began = True
        effects.announcements.append(("recording-started", {"role": self.by.value if self.by else ""}))
        effects.audits.append(("recording.start", self.id, self.by.value if self.by else None))
        logger.info("%r recording %s started", self, self.id)

    @staticmethod
    def _attach(recorder: Recorder | RemoteRecorder, room: Room | RemoteRoom) -> None:
        if isinstance(recorder, Recorder) and isinstance(room, Room):
            recorder.attach(room)
        elif isinstance(recorder, RemoteRecorder) and isinstance(room, RemoteRoom):
            recorder.attach(room)

    def _stop(self, why: str, role: Role | None, effects: RecordingEffects,
              announcement: str = "recording-stopped") -> None:
        recorder = self.recorder
        was = self.state
        self._reset()
        if recorder is not None:
            recorder.stop()
            assert self._service is not None
            self._service.finish(recorder)
            effects.announcements.append((announcement, {}))
            effects.audits.append(("recording.stop", recorder.id, role.value if role else None))
        logger.info("%r recording (%s) %s", self, was, why)

    def _reset(self) -> None:
        self.state, self.id, self.by, self.since, self.recorder = "off", None, None, None, None
