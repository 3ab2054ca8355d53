"""A media worker process: owns the Rooms placed on it, driven by messages from the signaling process.

Started by `sfu.remote.WorkerPool` (spawned: `python -m sfu.worker FD CONFIG`,
never forked from the signaling process), it talks over one end of a Unix
socket pair, one JSON object per line:

    request  {"id": n, "op": "add" | "offer" | "close-participant" | "close-room" | "stats" | "info", ...}
    reply    {"re": n, "ok": value}  or  {"re": n, "error": "media" | "closed" | "failed", "message": text}
    event    {"event": "media-state", "participant": id, "state": "connected" | "failed" | "timeout"}

Requests are read in order; "add", "close-participant" and "close-room" are
applied before the next line is read (so an "offer" always finds its
participant), the others run as tasks.  Other ops go to `MediaWorker.handle_other`:
a subclass adds its own (recorder/worker.py, started as `python -m recorder.worker`,
runs the consultation's recorder next to its room), and its events go back the
same way (`send`).  It has its own slice of the UDP port
range (its own IcePolicy) and exits when the channel closes.  No patient data
crosses the channel: ids, roles, SDP and counters only.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import socket
import sys
from typing import Any

from .errors import ClosedError, MediaError
from .ice import IcePolicy
from .looplag import LoopLag
from .options import SfuOptions
from .participant import Participant
from .priority import apply_realtime
from .room import Room
from .stats import participant_stats

logger = logging.getLogger(__name__)

#: longest line accepted on the channel (an SDP offer is a few kB)
LINE_LIMIT = 1 << 20


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class MediaWorker:
    """The rooms of one worker and the channel's request handlers."""

    def __init__(self, options: SfuOptions, policy: IcePolicy, writer: asyncio.StreamWriter) -> None:
        self._options = options
        self._policy = policy
        self._writer = writer
        self.rooms: dict[str, Room] = {}
        self.participants: dict[str, Participant] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.loop_lag = LoopLag()  # how late this worker's loop runs (info())

    def send(self, message: dict[str, Any]) -> None:
        if not self._writer.is_closing():
            self._writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def handle(self, message: dict[str, Any]) -> None:
        op, rid = message.get("op"), message.get("id")
        try:
            if op == "add":
                self._add(message["room"], message["participant"], message["role"])
            elif op == "close-participant":
                participant = self.participants.pop(message["participant"], None)
                if participant is not None:
                    participant.close()
            elif op == "close-room":
                room = self.rooms.pop(message["room"], None)
                if room is not None:
                    room.close()
                    for p in room.participants:
                        self.participants.pop(p.id, None)
            elif op in ("offer", "stats", "info"):
                self.spawn(self._answer(rid, op, message))
                return
            else:
                self.handle_other(op, message)
        except Exception as exc:
            self._fail(rid, exc)
            return
        if rid is not None:
            self.send({"re": rid, "ok": None})

    def handle_other(self, op: Any, message: dict[str, Any]) -> None:
        """An op this class does not know (a subclass adds its own); applied before the next line is read."""
        raise ValueError(f"unknown op {op!r}")

    def spawn(self, coro: Any) -> None:
        """Run `coro` as a task of this worker."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def room(self, room_id: str) -> Room:
        """The live room `room_id`, made if needed."""
        room = self.rooms.get(room_id)
        if room is None or room.closed:
            room = self.rooms[room_id] = Room(room_id, self._options)
        return room

    def _add(self, room_id: str, participant_id: str, role: str) -> None:
        room = self.room(room_id)
        participant = room.add_participant(participant_id, role)
        self.participants[participant_id] = participant
        participant.on("media-state", lambda state, pid=participant_id: self.send(
            {"event": "media-state", "participant": pid, "state": state}))
        participant.once("close", lambda pid=participant_id, p=participant: self._forget(pid, p))

    def _forget(self, participant_id: str, participant: Participant) -> None:
        if self.participants.get(participant_id) is participant:
            del self.participants[participant_id]

    async def _answer(self, rid: Any, op: str, message: dict[str, Any]) -> None:
        try:
            value: Any
            if op == "offer":
                participant = self.participants.get(message["participant"])
                if participant is None:
                    raise ClosedError(f"participant {message['participant']} is closed")
                value = await participant.handle_offer(message["sdp"])
            elif op == "stats":
                participant = self.participants.get(message["participant"])
                value = None if participant is None else await participant_stats(participant)
            else:
                value = self.info()
        except Exception as exc:
            self._fail(rid, exc)
            return
        self.send({"re": rid, "ok": value})

    def info(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "rooms": len(self.rooms), "participants": len(self.participants),
                "cpu_seconds": round(cpu_seconds(), 3), "udp_dropped": dict(self._policy.guard.dropped),
                "event_loop": self.loop_lag.report()}

    def _fail(self, rid: Any, exc: Exception) -> None:
        kind = "media" if isinstance(exc, MediaError) else "closed" if isinstance(exc, ClosedError) else "failed"
        if kind == "failed":
            logger.exception("worker request failed")
        if rid is not None:
            self.send({"re": rid, "error": kind, "message": str(exc)})

    def configure(self, config: dict[str, Any]) -> None:
        """The worker's start configuration, for what a subclass needs of it (nothing here)."""

    async def close(self) -> None:
        for room in list(self.rooms.values()):
            room.close()
        await asyncio.gather(*(room.wait_closed() for room in self.rooms.values()), return_exceptions=True)
        self.rooms.clear()


async def serve(sock: socket.socket, config: dict[str, Any], factory: type[MediaWorker] = MediaWorker) -> None:
    options = SfuOptions(**config["options"])
    ice = config["ice"]
    policy = IcePolicy(list(ice["addresses"]), ice["port_min"], ice["port_max"],
                       {k: list(v) for k, v in ice["announced"].items()})
    policy.install()
    apply_realtime(options.realtime_priority)  # this thread runs the loop that forwards the media
    reader, writer = await asyncio.open_unix_connection(sock=sock, limit=LINE_LIMIT)
    worker = factory(options, policy, writer)
    worker.configure(config)
    worker.loop_lag.start()
    logger.info("media worker %s ready, UDP ports %d-%d", os.getpid(), policy.port_min, policy.port_max)
    try:
        while line := await reader.readline():
            worker.handle(json.loads(line))
            await writer.drain()
    finally:
        worker.loop_lag.stop()
        await worker.close()
        writer.close()


def main(argv: list[str], factory: type[MediaWorker] = MediaWorker) -> None:
    fd, config = int(argv[1]), json.loads(argv[2])
    logging.basicConfig(level=config.get("log_level", "WARNING"), stream=sys.stderr,
                        format=f"worker {os.getpid()} %(levelname)s %(name)s: %(message)s")
    sock = socket.socket(fileno=fd)
    loop: asyncio.AbstractEventLoop
    if config.get("event_loop") == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(serve(sock, config, factory))
    finally:
        loop.close()


if __name__ == "__main__":
    main(sys.argv)
