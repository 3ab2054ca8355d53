"""Media workers seen from the signaling process: a pool of `sfu.worker` processes and Room proxies.

`WorkerPool.room(id)` places a consultation's room on the worker with the
fewest rooms (ties: fewest participants) and returns a `RemoteRoom` whose
`add_participant` gives a `RemoteParticipant`: the same calls the hub makes
on a local Room/Participant (`add_participant`, `on("media-state")`,
`await handle_offer(sdp)`, `close()`, `closed`), carried as messages.

A worker that exits (SIGKILL, crash) is noticed by its watcher (process
exit and channel EOF), started again, and each of its rooms is placed again
(least loaded) with the same participants; each participant then reports
"failed", which the browser answers with a new offer (web/js/call.js), and
that offer reaches the new worker; the room then emits "moved" (a recorder
attached to it starts again there: recorder/remote.py).  Nothing else of the
consultation lives in a worker but its recorder, when it records.

Events of the worker other than "media-state" are emitted by the pool as
(event name, worker, message); `pin(room id, worker)` keeps a consultation's
next room on the worker that holds its recorder.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import logging
import os
import socket
import sys
from typing import Any

from pyee.asyncio import AsyncIOEventEmitter

from .errors import ClosedError, MediaError, SfuError
from .ice import IcePolicy
from .options import SfuOptions
from .worker import LINE_LIMIT

logger = logging.getLogger(__name__)

#: a worker that keeps dying is started again at most this often (s)
RESTART_INTERVAL = 1.0
#: seconds a request may wait for its reply before the worker is judged stuck
REQUEST_TIMEOUT = 30.0


class WorkerGone(SfuError):
    """The worker died or was stopped before answering."""


def port_slices(port_min: int, port_max: int, count: int) -> list[tuple[int, int]]:
    """Split the inclusive range into `count` contiguous, disjoint slices (the first ones one port larger)."""
    span = port_max - port_min + 1
    if count < 1 or span < count:
        raise ValueError(f"cannot split {span} ports among {count} workers")
    size, extra = divmod(span, count)
    slices, start = [], port_min
    for i in range(count):
        end = start + size + (1 if i < extra else 0) - 1
        slices.append((start, end))
        start = end + 1
    return slices


class Channel:
    """Requests and replies over one end of a socket pair; events go to `on_event`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 on_event: Any) -> None:
        self._reader, self._writer = reader, writer
        self._on_event = on_event
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.closed = False
        self.done = asyncio.ensure_future(self._read())

    def send(self, op: str, **fields: Any) -> None:
        """A request whose reply nobody waits for (applied in order by the worker)."""
        if not self.closed:
            self._writer.write(json.dumps({"op": op, **fields}, separators=(",", ":")).encode() + b"\n")

    async def request(self, op: str, **fields: Any) -> Any:
        if self.closed:
            raise WorkerGone("the media worker is gone")
        rid = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            self._writer.write(json.dumps({"id": rid, "op": op, **fields}, separators=(",", ":")).encode() + b"\n")
            return await asyncio.wait_for(future, REQUEST_TIMEOUT)
        finally:
            self._pending.pop(rid, None)

    async def _read(self) -> None:
        try:
            while line := await self._reader.readline():
                message = json.loads(line)
                if "re" in message:
                    future = self._pending.get(message["re"])
                    if future is not None and not future.done():
                        if "error" in message:
                            kind = {"media": MediaError, "closed": ClosedError}.get(message["error"], SfuError)
                            future.set_exception(kind(message.get("message", "")))
                        else:
                            future.set_result(message.get("ok"))
                else:
                    self._on_event(message)
        except (ConnectionError, ValueError) as exc:  # a reset, or a line the worker never should have sent
            logger.warning("media worker channel broke: %s", exc)
        finally:
            self.closed = True
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(WorkerGone("the media worker is gone"))

    def close(self) -> None:
        self.closed = True
        self._writer.close()


class Worker:
    """One worker process, its channel and the rooms placed on it."""

    def __init__(self, index: int, config: dict[str, Any], module: str = "sfu.worker",
                 on_other: Any = None) -> None:
        self.index = index
        self._config = config
        self._module = module
        self._on_other = on_other
        self.process: asyncio.subprocess.Process | None = None
        self.channel: Channel | None = None
        self.rooms: dict[str, RemoteRoom] = {}
        self.participants: dict[str, RemoteParticipant] = {}
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def load(self) -> tuple[int, int]:
        return len(self.rooms), sum(len(r.members) for r in self.rooms.values())

    async def start(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", self._module, str(theirs.fileno()), json.dumps(self._config),
                pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
        self.channel = Channel(reader, writer, self._on_event)
        logger.info("media worker %d started (pid %d, ports %d-%d)", self.index, self.process.pid,
                    self._config["ice"]["port_min"], self._config["ice"]["port_max"])

    def _on_event(self, message: dict[str, Any]) -> None:
        if message.get("event") == "media-state":
            participant = self.participants.get(message["participant"])
            if participant is not None:
                participant.media_state = message["state"]
                participant.emit("media-state", message["state"])
        elif self._on_other is not None:
            self._on_other(self, message)

    async def ended(self) -> None:
        """Return when the process exited or its channel closed (then make sure the process is gone)."""
        assert self.process is not None and self.channel is not None
        waits = {asyncio.ensure_future(self.process.wait()), self.channel.done}
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()
        self.channel.close()

    async def info(self) -> dict[str, Any]:
        assert self.channel is not None
        result: dict[str, Any] = await self.channel.request("info")
        return result


class WorkerPool(AsyncIOEventEmitter):
    """`count` media workers, each with its slice of the UDP range; watched and restarted.

    `module` is the worker program (`python -m module`): "sfu.worker", or
    "recorder.worker" to record inside the workers; `extra` goes into each
    worker's start configuration (e.g. the key file's path; never secrets: it
    is on the command line).
    """

    def __init__(self, options: SfuOptions, ice: IcePolicy, count: int, *, event_loop: str = "asyncio",
                 log_level: str = "WARNING", module: str = "sfu.worker",
                 extra: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._options = options
        self.homes: dict[str, Worker] = {}
        self.workers = [
            Worker(i, {
                "options": dataclasses.asdict(options),
                "ice": {"addresses": list(ice.addresses), "port_min": lo, "port_max": hi,
                        "announced": {k: list(v) for k, v in ice.announced.items()}},
                "event_loop": event_loop, "log_level": log_level, "index": i, **(extra or {}),
            }, module, self._other_event)
            for i, (lo, hi) in enumerate(port_slices(ice.port_min, ice.port_max, count))
        ]
        self._watchers: list[asyncio.Task[None]] = []
        self.closed = False
        self._replaced = asyncio.Event()

    async def start(self) -> None:
        await asyncio.gather(*(w.start() for w in self.workers))
        self._watchers = [asyncio.ensure_future(self._watch(w)) for w in self.workers]

    def _other_event(self, worker: Worker, message: dict[str, Any]) -> None:
        self.emit(str(message.get("event")), worker, message)

    def room(self, room_id: str) -> RemoteRoom:
        """A new room on the least-loaded live worker (or on the one it is pinned to)."""
        room = RemoteRoom(room_id, self)
        self._place(room)
        return room

    def pin(self, room_id: str, worker: Worker | None) -> None:
        """Place the next room `room_id` on `worker` while it lives (None: least loaded again)."""
        if worker is None:
            self.homes.pop(room_id, None)
        else:
            self.homes[room_id] = worker

    def choose(self, room_id: str) -> Worker:
        """Where room `room_id` goes: the worker it is pinned to if that one lives, else the least loaded."""
        live = [w for w in self.workers if w.channel is not None and not w.channel.closed] or self.workers
        home = self.homes.get(room_id)
        return home if home in live else min(live, key=lambda w: w.load)

    def _place(self, room: RemoteRoom) -> None:
        worker = self.choose(room.id)
        room.worker = worker
        worker.rooms[room.id] = room
        for participant in room.members.values():
            worker.participants[participant.id] = participant
            if worker.channel is not None:
                worker.channel.send("add", room=room.id, participant=participant.id, role=participant.role)

    async def _watch(self, worker: Worker) -> None:
        while not self.closed:
            await worker.ended()
            if self.closed:
                return
            logger.warning("media worker %d (pid %s) died with %s; starting it again", worker.index, worker.pid,
                           worker.process.returncode if worker.process else None)
            orphans = list(worker.rooms.values())
            worker.rooms.clear()
            worker.participants.clear()
            for _ in range(1000):  # bounded; one try a second
                try:
                    await worker.start()
                    break
                except OSError:
                    logger.exception("media worker %d could not start", worker.index)
                    await asyncio.sleep(RESTART_INTERVAL)
            worker.restarts += 1
            for room in orphans:
                if not room.closed:
                    self._place(room)
                    for participant in list(room.members.values()):
                        participant.media_state = "failed"
                        participant.emit("media-state", "failed")  # the browser re-offers
                    room.emit("moved")  # a recorder attached to it starts again there
            self._replaced.set()
            await asyncio.sleep(RESTART_INTERVAL if worker.restarts > 3 else 0)

    async def stats(self) -> list[dict[str, Any]]:
        """Each worker's pid, rooms placed, participants, CPU seconds and UDP drops (a dead one: zeros)."""
        async def one(worker: Worker) -> dict[str, Any]:
            try:
                info = await worker.info()
            except (SfuError, AssertionError, asyncio.TimeoutError):
                info = {"pid": worker.pid, "rooms": 0, "participants": 0, "cpu_seconds": 0.0, "udp_dropped": {}}
            # rooms: those placed on it (the worker itself makes a room when its first participant comes)
            return {"worker": worker.index, "restarts": worker.restarts, **info, "rooms": len(worker.rooms)}
        return list(await asyncio.gather(*(one(w) for w in self.workers)))

    async def close(self) -> None:
        self.closed = True
        for task in self._watchers:
            task.cancel()
        for worker in self.workers:
            if worker.channel is not None:
                worker.channel.close()  # EOF: the worker closes its rooms and exits
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                try:
                    await asyncio.wait_for(worker.process.wait(), 5.0)
                except asyncio.TimeoutError:
                    worker.process.kill()
                    await worker.process.wait()


class RemoteRoom(AsyncIOEventEmitter):
    """A Room living in a worker; same calls as `sfu.Room` for the hub."""

    def __init__(self, id: str, pool: WorkerPool) -> None:
        super().__init__()
        self.id = id
        self.closed = False
        self.worker: Worker | None = None
        self.members: dict[str, RemoteParticipant] = {}
        self._pool = pool

    def __repr__(self) -> str:
        return f"RemoteRoom({self.id}, worker {self.worker.index if self.worker else None})"

    @property
    def participants(self) -> tuple[RemoteParticipant, ...]:
        return tuple(self.members.values())

    def add_participant(self, id: str, role: str) -> RemoteParticipant:
        if self.closed:
            raise ClosedError(f"{self!r} is closed")
        if id in self.members:
            raise ValueError(f"{self!r} already has participant {id}")
        participant = RemoteParticipant(id, role, self)
        self.members[id] = participant
        worker = self.worker
        assert worker is not None
        worker.participants[id] = participant
        if worker.channel is not None:
            worker.channel.send("add", room=self.id, participant=id, role=role)
        return participant

    def _remove(self, participant: RemoteParticipant) -> None:
        if self.members.pop(participant.id, None) is not None and self.worker is not None:
            self.worker.participants.pop(participant.id, None)
            if self.worker.channel is not None:
                self.worker.channel.send("close-participant", participant=participant.id)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for participant in list(self.members.values()):
            participant.close()
        if self.worker is not None:
            self.worker.rooms.pop(self.id, None)
            if self.worker.channel is not None:
                self.worker.channel.send("close-room", room=self.id)
        self.emit("close")

    async def wait_closed(self) -> None:
        """Nothing to wait for here: the worker closes the peer connections on its own."""


class RemoteParticipant(AsyncIOEventEmitter):
    """A Participant living in a worker: `handle_offer`, `close`, "media-state" events, `stats()`."""

    def __init__(self, id: str, role: str, room: RemoteRoom) -> None:
        super().__init__()
        self.id = id
        self.role = role
        self.closed = False
        self.media_state = "new"
        self._room = room

    def __repr__(self) -> str:
        return f"RemoteParticipant({self.id}, {self.role})"

    @property
    def worker(self) -> Worker | None:
        return self._room.worker

    async def handle_offer(self, sdp: str) -> str:
        if self.closed:
            raise ClosedError(f"{self!r} is closed")
        worker = self._room.worker
        if worker is None or worker.channel is None:
            raise WorkerGone("no media worker")
        answer: str = await worker.channel.request("offer", participant=self.id, sdp=sdp)
        return answer

    async def stats(self) -> dict[str, Any] | None:
        """The worker's `sfu.stats.participant_stats` for this participant (None: gone)."""
        worker = self._room.worker
        if self.closed or worker is None or worker.channel is None:
            return None
        try:
            result: dict[str, Any] | None = await worker.channel.request("stats", participant=self.id)
        except (SfuError, asyncio.TimeoutError):
            return None
        return result

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._room._remove(self)
        self.emit("close")

    async def wait_closed(self) -> None:
        """Nothing to wait for here."""


def default_count(setting: int | str) -> int:
    """`[sfu] workers`: "auto" is one per core."""
    if setting != "auto":
        return int(setting)
    return max(1, len(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
