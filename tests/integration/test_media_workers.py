"""Rooms in media worker processes ([sfu] workers = 2): placement, real media, a killed worker."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

from helpers.media_peers import Peer, dominant_colour

from sfu import IcePolicy, SfuOptions
from sfu.remote import RemoteParticipant, RemoteRoom, WorkerPool


async def join(room: RemoteRoom, pid: str, role: str, peer: Peer) -> RemoteParticipant:
    participant = room.add_participant(pid, role)
    await peer.accept(await participant.handle_offer(await peer.offer()))
    return participant


async def rejoin(participant: RemoteParticipant, old: Peer, colour: str) -> Peer:
    """What the page does on a "failed" media state: a new peer connection, a new offer."""
    await old.close()
    peer = Peer(colour)
    await peer.accept(await participant.handle_offer(await peer.offer()))
    return peer


async def test_two_consultations_land_on_two_workers_and_forward_media() -> None:
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41000, 41099), 2)
    await pool.start()
    peers = [Peer(c) for c in ("red", "blue", "green", "red")]
    try:
        one, two = pool.room("c1"), pool.room("c2")
        assert one.worker is not None and two.worker is not None
        assert one.worker.pid != two.worker.pid and os.getpid() not in (one.worker.pid, two.worker.pid)
        await join(one, "a", "practitioner", peers[0])
        await join(one, "b", "patient", peers[1])
        await join(two, "c", "practitioner", peers[2])
        await join(two, "d", "patient", peers[3])
        assert dominant_colour(await peers[0].wait_video()) == "blue"
        assert dominant_colour(await peers[1].wait_video()) == "red"
        assert dominant_colour(await peers[2].wait_video()) == "red"
        assert dominant_colour(await peers[3].wait_video()) == "green"
        stats = {w["pid"]: w for w in await pool.stats()}
        assert set(stats) == {one.worker.pid, two.worker.pid}
        assert [w["rooms"] for w in stats.values()] == [1, 1]
        assert all(w["participants"] == 2 and w["cpu_seconds"] > 0 for w in stats.values())
        assert all(w["event_loop"]["wakes"] > 0 for w in stats.values())  # each worker watches its own loop
        # each worker answered with candidates from its own slice of the range
        port_ranges = [(41000, 41049), (41050, 41099)]
        assert sorted((w._config["ice"]["port_min"], w._config["ice"]["port_max"]) for w in pool.workers) == port_ranges
    finally:
        await pool.close()
        await asyncio.gather(*(p.close() for p in peers))
    assert all(w.process is not None and w.process.returncode is not None for w in pool.workers)


async def test_a_killed_worker_is_replaced_and_the_peers_get_media_back() -> None:
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 41100, 41199), 2)
    await pool.start()
    red, blue = Peer("red"), Peer("blue")
    try:
        room = pool.room("c3")
        a = await join(room, "a", "practitioner", red)
        b = await join(room, "b", "patient", blue)
        assert dominant_colour(await red.wait_video()) == "blue"
        assert dominant_colour(await blue.wait_video()) == "red"
        states: list[tuple[str, Any]] = []
        a.on("media-state", lambda s: states.append(("a", s)))
        b.on("media-state", lambda s: states.append(("b", s)))
        old = room.worker
        assert old is not None and old.pid is not None
        dead_pid = old.pid
        os.kill(dead_pid, signal.SIGKILL)
        for _ in range(200):  # bounded: 20 s
            if ("a", "failed") in states and ("b", "failed") in states:
                break
            await asyncio.sleep(0.1)
        assert ("a", "failed") in states and ("b", "failed") in states
        assert room.worker is not None and room.worker.pid not in (None, dead_pid)
        red, blue = await asyncio.gather(rejoin(a, red, "red"), rejoin(b, blue, "blue"))
        assert dominant_colour(await red.wait_video()) == "blue"
        assert dominant_colour(await blue.wait_video()) == "red"
        assert ("a", "connected") in states[states.index(("a", "failed")):]
        assert sum(w["rooms"] for w in await pool.stats()) == 1
    finally:
        await pool.close()
        await asyncio.gather(red.close(), blue.close())


async def test_realtime_priority_puts_each_worker_loop_under_round_robin() -> None:
    """[media] realtime_priority: each worker's loop thread (its main thread) runs SCHED_RR (the suite runs
    as root, which may); the server's own process is left alone."""
    pool = WorkerPool(SfuOptions(realtime_priority=3), IcePolicy(["127.0.0.1"], 41100, 41199), 2)
    await pool.start()
    try:
        assert (await pool.stats())  # each worker answers: it runs its loop
        pids = [w.pid for w in pool.workers]
        assert all(pid is not None for pid in pids)
        policies = {pid: os.sched_getscheduler(pid) & ~os.SCHED_RESET_ON_FORK for pid in pids if pid}
        assert set(policies.values()) == {os.SCHED_RR}, policies
        assert all(os.sched_getparam(pid).sched_priority == 3 for pid in policies)
        assert os.sched_getscheduler(0) == os.SCHED_OTHER
    finally:
        await pool.close()
