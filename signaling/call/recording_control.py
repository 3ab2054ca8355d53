"""One consultation's recording: who may start it, consent, the notice rule (docs/protocol.md).

States: off -> (consent ->) notice -> recording -> off.  While `notice`, the
other side has been shown the indicator but nothing is written: writing starts
when the other side's tab acknowledges the notice (`recording-seen`), or at once
if the other side is not connected, once every connected tab was sent it.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import TYPE_CHECKING, Any

from clinic import Role, Stage
from recorder import Recorder

from ..config import RecordingConfig
from ..errors import ProtocolError
from .lobby import other

if TYPE_CHECKING:
    from sfu import Room

    from .hub import Hub
    from ..recording_service import RecordingService

logger = logging.getLogger(__name__)


class RecordingControl:
    """The recording state of one hub; every method runs under the hub's lock."""

    def __init__(self, hub: Hub, config: RecordingConfig, service: RecordingService | None) -> None:
        self._hub = hub
        self._config = config
        self._service = service
        self.state = "off"
        self.id: str | None = None
        self.by: Role | None = None
        self.since: str | None = None
        self.recorder: Recorder | None = None
        # system chat lines (key, params) and audit entries (action, recording id,
        # role or None for the server) to write once the lock is released
        self.pending_announcements: list[tuple[str, dict[str, str]]] = []
        self.pending_audit: list[tuple[str, str, str | None]] = []

    def allowed(self, role: Role) -> bool:
        return self._service is not None and role.value in self._config.allowed_roles

    def snapshot(self) -> dict[str, Any] | None:
        if self.state == "off" or self.by is None:
            return None
        return {"id": self.id, "state": self.state, "by": self.by.value, "since": self.since}

    # --- messages (validated fields)

    def record(self, role: Role, on: bool) -> list[tuple[Role, dict[str, Any]]]:
        """`record` from `role`: start (maybe asking consent first) or stop."""
        if not self.allowed(role):
            raise ProtocolError("not-allowed", "your role may not start or stop a recording")
        if not on:
            if self.state != "off":
                self._stop(f"stopped by the {role.value}", role)
            return []
        if self.state != "off":
            raise ProtocolError("out-of-order", f"a recording is already {self.state}")
        if self._hub.state.stage(role) is not Stage.IN_CALL:
            raise ProtocolError("out-of-order", "a recording can only start in the call")
        self.id, self.by = uuid.uuid4().hex, role
        self.state = "consent" if self._config.require_consent else "notice"
        logger.info("%r recording %s requested by %s (%s)", self._hub, self.id, role.value, self.state)
        return []

    def consent(self, role: Role, recording_id: str, accept: bool) -> list[tuple[Role, dict[str, Any]]]:
        """The other side's answer to a consent request."""
        if self.state != "consent" or recording_id != self.id:
            raise ProtocolError("out-of-order", "no recording is waiting for your consent")
        assert self.by is not None
        if role is self.by:
            raise ProtocolError("not-allowed", "the other side must consent")
        if accept:
            self.state = "notice"
            logger.info("%r recording %s accepted", self._hub, self.id)
            return []
        logger.info("%r recording %s refused", self._hub, self.id)
        asker = self.by
        self._reset()
        return [(asker, {"type": "recording-refused", "id": recording_id})]

    def seen(self, role: Role, recording_id: str) -> None:
        """A tab acknowledged the notice; the other side's ack starts the writing."""
        if self.state == "notice" and recording_id == self.id and role is not self.by:
            self._begin()

    # --- hub events

    def after_broadcast(self) -> bool:
        """Every connected tab was sent the state: start if the other side is not there to ack."""
        if self.state == "notice" and self.by is not None and other(self.by) not in self._hub.connections:
            self._begin()
            return True
        return False

    def attach_room(self, room: Room) -> None:
        if self.recorder is not None:
            self.recorder.attach(room)

    def note_tracks(self, role: Role, tracks: dict[str, bool]) -> None:
        if self.recorder is not None:
            self.recorder.note_tracks(role.value, tracks)

    def close(self) -> None:
        """The call ended or the hub is going away."""
        if self.state != "off":
            self._stop("the call ended", None)

    # --- internals

    def _begin(self) -> None:
        assert self._service is not None and self.id is not None
        self.state = "recording"
        self.since = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        recorder = self.recorder = self._service.new_recorder(self._hub.id, self.id)
        recorder.start()
        if self._hub.room is not None and not self._hub.room.closed:
            recorder.attach(self._hub.room)
        for side in Role:
            recorder.note_tracks(side.value, self._hub.tracks[side])
        self.pending_announcements.append(("recording-started", {"role": self.by.value if self.by else ""}))
        self.pending_audit.append(("recording.start", self.id, self.by.value if self.by else None))
        logger.info("%r recording %s started", self._hub, self.id)

    def _stop(self, why: str, role: Role | None) -> None:
        recorder = self.recorder
        was = self.state
        self._reset()
        if recorder is not None:
            recorder.stop()
            assert self._service is not None
            self._service.finish(recorder)
            self.pending_announcements.append(("recording-stopped", {}))
            self.pending_audit.append(("recording.stop", recorder.id, role.value if role else None))
        logger.info("%r recording (%s) %s", self._hub, was, why)

    def _reset(self) -> None:
        self.state, self.id, self.by, self.since, self.recorder = "off", None, None, None, None
