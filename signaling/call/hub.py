"""Live consultations: who is connected, the handshake, and the SFU room."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any, Protocol

from clinic import Clinic, Consultation, ConsultationState, NetTest, Readiness, Role, Stage
from clinic.board import Board, BoardLimits
from clinic.boardimages import BoardImages
from sfu import Participant, Room, SfuError, SfuOptions
from sfu.remote import RemoteParticipant, RemoteRoom, WorkerPool

from ..config import RecordingConfig, WhiteboardConfig
from ..errors import ProtocolError
from ..recording_service import RecordingService
from . import lobby
from .bell import ChangeBell
from .chat import ChatLimits, ChatRoom
from .consent import ConsentGate
from .recording_control import RecordingControl, RecordingEffects
from .whiteboard import SavePng, Whiteboard, document_saver

logger = logging.getLogger(__name__)


class Connection(Protocol):
    """What the hub needs of a participant's WebSocket session."""

    id: str
    role: Role

    async def send(self, message: dict[str, Any]) -> None: ...

    async def replaced(self) -> None: ...

    async def going_away(self) -> None: ...


DEFAULT_TRACKS = {"mic": True, "camera": True, "screen": False}


@dataclasses.dataclass(frozen=True)
class CallServices:
    """What every live consultation uses, built once at start (signaling/app.py) and shared by all hubs."""

    clinic: Clinic
    sfu: SfuOptions
    chat: ChatLimits = dataclasses.field(default_factory=ChatLimits)
    whiteboard: WhiteboardConfig = dataclasses.field(default_factory=WhiteboardConfig)
    recording: RecordingConfig = dataclasses.field(default_factory=RecordingConfig)
    #: renders whiteboard backgrounds; None: no background uploads
    board_images: BoardImages | None = None
    #: writes and composes recordings; None: recording is unavailable
    recordings: RecordingService | None = None
    #: media worker processes ([sfu] workers > 1); None: rooms live in this process
    workers: WorkerPool | None = None


class Hub:
    """One consultation while anyone is connected to it.

    Holds the lobby state (persisted on every change), one connection per side
    and the SFU room.  Every change runs under one lock, so two sides pressing
    buttons at the same moment are applied one after the other.
    """

    def __init__(self, consultation: Consultation, services: CallServices, *,
                 readiness: dict[Role, Readiness] | None = None, board: Board | None = None,
                 save_png: SavePng | None = None, consent: ConsentGate | None = None) -> None:
        self.id = consultation.id
        self.scheduled_at = consultation.scheduled_at
        # rung after every state broadcast (the day list's arrivals, signaling/practice/arrivals.py)
        self.on_change: ChangeBell | None = None
        # the patient's teleconsultation consent: no join/ready without it
        self.consent = consent or ConsentGate(consultation.id, services.clinic, None)
        self.state = lobby.LobbyState(consultation.state, consultation.practitioner_stage, consultation.patient_stage)
        self.connections: dict[Role, Connection] = {}
        self.participants: dict[Role, Participant | RemoteParticipant] = {}
        self.room: Room | RemoteRoom | None = None
        # what each side says it sends (mute, camera off, screen share)
        self.tracks: dict[Role, dict[str, bool]] = {role: dict(DEFAULT_TRACKS) for role in Role}
        # each side's devices and connection test, as stored (survives reloads and restarts)
        self.readiness: dict[Role, Readiness] = dict(readiness or {})
        clinic = self._clinic = services.clinic
        self._sfu_options = services.sfu
        self._workers = services.workers
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._recordings = services.recordings
        self.recording = RecordingControl(
            self.id, services.recording, services.recordings, stage=lambda role: self.state.stage(role),
            connected=lambda role: role in self.connections, room=lambda: self.room,
            tracks=lambda role: self.tracks[role],
        )
        # the consultation's chat (signaling/call/chat.py), sent to whoever is connected
        self.chat = ChatRoom(self.id, clinic, services.chat, lambda: list(self.connections.values()))
        wb = services.whiteboard
        self.whiteboard = Whiteboard(
            self.id, board or Board(board_limits(wb)), clinic, wb, connections=self.connections,
            stage=lambda role: self.state.stage(role), images=services.board_images, save_png=save_png,
        )

    def __repr__(self) -> str:
        return f"Hub({self.id})"

    async def system_message(self, key: str, **params: str) -> None:
        """Post an event to the chat of both sides ("joined", "left", ...): the browser translates `key`."""
        await self.chat.post_system(key, params)

    async def attach(self, conn: Connection) -> None:
        """Connect a side; a previous tab of the same side is told and dropped."""
        async with self._lock:
            previous = self.connections.get(conn.role)
            self.connections[conn.role] = conn
            if previous is not None:
                logger.info("%r %s opened elsewhere, replacing %s", self, conn.role.value, previous.id)
                self._leave_room(conn.role)
                await previous.replaced()
        await self.broadcast()
        await self.whiteboard.attach(conn)

    async def detach(self, conn: Connection) -> None:
        async with self._lock:
            if self.connections.get(conn.role) is not conn:
                return  # already replaced by another tab
            del self.connections[conn.role]
            self.tracks[conn.role] = dict(DEFAULT_TRACKS)
            self.recording.note_tracks(conn.role, self.tracks[conn.role])
            self._leave_room(conn.role)
        await self.whiteboard.detach(conn.role)
        await self.broadcast()
        await self._recording_follow_up()

    async def act(self, role: Role, action: str) -> None:
        """Apply join / ready / hangup from `role`, persist, and tell both sides."""
        effects = RecordingEffects()
        async with self._lock:
            old = self.state
            new = lobby.apply(self.state, role, action)
            self.consent.check(role, action, new.patient is Stage.IN_CALL and old.patient is not Stage.IN_CALL)
            await self._clinic.update_consultation(
                self.id, state=new.consultation, practitioner_stage=new.practitioner, patient_stage=new.patient
            )
            self.state = new
            logger.info("%r %s %s -> %s", self, role.value, action, new.consultation.value)
            for side in Role:
                if new.stage(side) is not Stage.IN_CALL:
                    self._leave_room(side)
            if new.consultation is ConsultationState.ENDED:
                effects = self.recording.close()
            if new.consultation is ConsultationState.ENDED and self.room is not None:
                self.room.close()
                self.room = None
        await self.broadcast()
        await self._recording_follow_up(effects)
        await self._call_events(old, new)

    async def _call_events(self, old: lobby.LobbyState, new: lobby.LobbyState) -> None:
        """The chat's system lines for who entered or left the call (a failure here never undoes the step)."""
        events: list[tuple[str, dict[str, str]]] = []
        if new.consultation is ConsultationState.ENDED and old.consultation is not ConsultationState.ENDED:
            events.append(("ended", {}))
        else:
            for side in Role:
                was, now = old.stage(side) is Stage.IN_CALL, new.stage(side) is Stage.IN_CALL
                if was != now:
                    events.append(("joined" if now else "left", {"role": side.value}))
        for key, params in events:
            try:
                await self.system_message(key, **params)
            except Exception:
                logger.exception("%r could not post the %s chat line", self, key)

    async def set_tracks(self, conn: Connection, tracks: dict[str, bool]) -> None:
        """Record what a side sends and tell the other (e.g. its microphone is muted)."""
        async with self._lock:
            if self.connections.get(conn.role) is not conn:
                return
            self.tracks[conn.role] = {name: bool(tracks[name]) for name in DEFAULT_TRACKS}
            self.recording.note_tracks(conn.role, self.tracks[conn.role])
        await self.broadcast()

    async def set_readiness(self, conn: Connection, mic: str, camera: str, test: NetTest | None) -> None:
        """Store a side's devices and latest connection test, and show them to the other side."""
        async with self._lock:
            if self.connections.get(conn.role) is not conn:
                return
            try:
                saved = await self._clinic.save_readiness(self.id, conn.role, mic=mic, camera=camera, test=test)
            except ValueError as exc:
                raise ProtocolError("bad-message", f"'readiness': {exc}") from None
            self.readiness[conn.role] = saved
        await self.broadcast()

    async def offer(self, conn: Connection, sdp: str) -> str:
        """Answer the media offer of a side that is in the call."""
        async with self._lock:
            if self.connections.get(conn.role) is not conn:
                raise ProtocolError("out-of-order", "this tab was replaced by another one")
            if self.state.stage(conn.role) is not Stage.IN_CALL:
                raise ProtocolError("out-of-order", "'offer' is only valid in the call")
            participant = self.participants.get(conn.role)
            if participant is None:
                if self.room is None or self.room.closed:
                    if self._workers is not None:  # placed on the least-loaded media worker
                        self.room = self._workers.room(self.id)
                    else:
                        self.room = Room(self.id, self._sfu_options)
                    self.recording.attach_room(self.room)  # a running recording goes on in the new room
                participant = self.room.add_participant(f"{conn.role.value}-{uuid.uuid4().hex[:8]}", conn.role.value)
                participant.on("media-state", lambda state, c=conn: self._send_soon(c, {"type": "media", "state": state}))
                self.participants[conn.role] = participant
        try:
            return await participant.handle_offer(sdp)
        except SfuError as exc:  # a bad offer, or replaced/closed while negotiating
            raise ProtocolError("media-error", str(exc)) from None

    def snapshot(self, role: Role) -> dict[str, Any]:
        peer = lobby.other(role)
        return {
            "type": "state",
            "consultation_state": self.state.consultation.value,
            "self": {"stage": self.state.stage(role).value},
            "peer": {
                "connected": peer in self.connections,
                "stage": self.state.stage(peer).value,
                "tracks": self.tracks[peer],
                "readiness": _readiness_json(self.readiness.get(peer)),
            },
            "recording": self.recording.snapshot(),
            "consent": self.consent.snapshot(),
        }

    async def broadcast(self) -> None:
        if self.on_change is not None:
            self.on_change.ring()
        for role, conn in list(self.connections.items()):
            await conn.send(self.snapshot(role))

    @property
    def empty(self) -> bool:
        return not self.connections

    async def recording_message(self, conn: Connection, kind: str, fields: dict[str, Any]) -> None:
        """`record`, `recording-consent` or `recording-seen` from a side (signaling/call/recording_control.py)."""
        async with self._lock:
            if self.connections.get(conn.role) is not conn:
                raise ProtocolError("out-of-order", "this tab was replaced by another one")
            if kind == "record" and fields["on"] and self._recordings is not None and self._recordings.disk_low:
                raise ProtocolError("disk-full", "the server is short of disk space: no recording can start")
            if kind == "record":
                effects = self.recording.record(conn.role, fields["on"])
            elif kind == "recording-consent":
                effects = self.recording.consent(conn.role, fields["recording"], fields["accept"])
                await self.consent.recording_answer(conn.role, fields["recording"], fields["accept"])
            else:
                effects = self.recording.seen(conn.role, fields["recording"])
        for role, message in effects.replies:
            target = self.connections.get(role)
            if target is not None:
                await target.send(message)
        await self.broadcast()
        await self._recording_follow_up(effects)

    async def stop_recording_disk_full(self) -> None:
        """The disk is short of space: a running recording stops (files kept) and both sides are told."""
        async with self._lock:
            effects = self.recording.disk_full()
        if effects is not None:
            await self.broadcast()
            await self._recording_follow_up(effects)

    async def _recording_follow_up(self, effects: RecordingEffects | None = None) -> None:
        """Apply a step's recording effects once the lock is released."""
        effects = effects or RecordingEffects()
        # the notice rule: once every connected tab was sent the state, maybe start
        async with self._lock:
            began = self.recording.after_broadcast()
        if began.began:
            await self.broadcast()
        effects.add(began)
        for key, params in effects.announcements:
            await self.system_message(key, **params)
        if self._recordings is not None:
            for action, recording_id, role in effects.audits:
                await self._recordings.note(action, self.id, recording_id, role)

    async def consent_message(self, conn: Connection, decision: str, version: str) -> None:
        """The patient's answer to the notice; a withdrawal in the call takes them out of it."""
        async with self._lock:
            if self.connections.get(conn.role) is not conn:
                raise ProtocolError("out-of-order", "this tab was replaced by another one")
            await self.consent.decide(conn.role, decision, version)
        if decision != "given" and self.state.stage(conn.role) is Stage.IN_CALL:
            await self.act(conn.role, "hangup")
        else:
            await self.broadcast()

    def close(self) -> None:
        effects = self.recording.close()
        # the last tab left during a recording: its end still goes in the chat
        if self._recordings is not None:
            for key, params in effects.announcements:
                self._recordings.spawn(self.system_message(key, **params))
            for action, recording_id, role in effects.audits:
                self._recordings.spawn(self._recordings.note(action, self.id, recording_id, role))
        for role in list(self.participants):
            self._leave_room(role)
        if self.room is not None:
            self.room.close()
            self.room = None

    def _leave_room(self, role: Role) -> None:
        participant = self.participants.pop(role, None)
        if participant is not None:
            participant.close()
        if self.room is not None and not self.participants:
            self.room.close()
            self.room = None

    def _send_soon(self, conn: Connection, message: dict[str, Any]) -> None:
        if self.connections.get(conn.role) is conn:
            task = asyncio.ensure_future(conn.send(message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def board_limits(config: WhiteboardConfig) -> BoardLimits:
    return BoardLimits(max_points_per_stroke=config.max_points_per_stroke, max_strokes=config.max_strokes,
                       undo_depth=config.undo_depth, max_points=config.max_points)


def _readiness_json(readiness: Readiness | None) -> dict[str, Any] | None:
    return None if readiness is None else readiness.as_json()


class HubRegistry:
    """The hubs of the consultations someone is connected to, in this process."""

    def __init__(self, services: CallServices) -> None:
        self.services = services
        self._clinic = services.clinic
        self._hubs: dict[str, Hub] = {}
        self._lock = asyncio.Lock()
        #: rung when any hub of this process changes state
        self.changes = ChangeBell()

    async def get(self, consultation_id: str) -> Hub:
        async with self._lock:
            hub = self._hubs.get(consultation_id)
            if hub is None:
                consultation = await self._clinic.get_consultation(consultation_id)
                readiness = await self._clinic.get_readiness(consultation_id)
                board = await self._clinic.load_board(consultation_id, board_limits(self.services.whiteboard))
                consent = ConsentGate(consultation_id, self._clinic, await self._clinic.latest_consent(consultation_id))
                hub = self._hubs[consultation_id] = Hub(
                    consultation, self.services, readiness=readiness, board=board,
                    save_png=self._png_saver(consultation_id),
                    consent=consent,
                )
                hub.on_change = self.changes
            return hub

    def _png_saver(self, consultation_id: str) -> SavePng | None:
        """How a saved board becomes one of the consultation's documents."""
        if self.services.board_images is None:
            return None
        return document_saver(self._clinic, self.services.board_images, consultation_id)

    def release(self, hub: Hub) -> None:
        """Forget a hub nobody is connected to (its state is in the database)."""
        if hub.empty and self._hubs.get(hub.id) is hub:
            hub.close()
            del self._hubs[hub.id]

    def hubs(self) -> list[Hub]:
        return list(self._hubs.values())

    def find(self, consultation_id: str) -> Hub | None:
        return self._hubs.get(consultation_id)

    async def shutdown(self) -> None:
        """Tell every connected tab the server is stopping (they reconnect later)."""
        self.changes.close()  # the day lists' event streams end too
        for hub in list(self._hubs.values()):
            for conn in list(hub.connections.values()):
                await conn.going_away()

    def close(self) -> None:
        for hub in self._hubs.values():
            hub.close()
        self._hubs.clear()
