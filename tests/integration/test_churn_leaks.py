"""Churn leaves nothing behind: after participants leave, rejoin and re-offer, no object of theirs survives.

Issue 17 item 9 (the soak's memory growth): counted with the garbage collector
(weak references to every departed participant's objects), not with time.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref
from typing import Any

from helpers.media_peers import Peer, connect

from sfu import Participant, Room, SfuOptions

CYCLES = 3


def owned(participant: Participant) -> list[Any]:
    """What one connection of `participant` holds: its pc, transports, ICE, SRTP side, producers, consumers."""
    pc = participant.pc
    assert pc is not None
    dtls = {t.receiver.transport for t in pc.getTransceivers()}
    objects: list[Any] = [participant, pc, *dtls, *participant.producers.values(), *participant.consumers.values(),
                          *participant.senders.values(), *participant._outlets.values()]
    for d in dtls:
        objects += [d.transport, d.transport._connection]  # RTCIceTransport, aioice Connection
    objects += [p.stream for p in participant.producers.values()]
    objects += [c.egress for c in participant.consumers.values() if c.egress is not None]
    return objects


def decoder_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.endswith("-decoder")]


async def test_departed_participants_and_replaced_connections_are_all_collected() -> None:
    room = Room("churn", SfuOptions())
    stay = Peer("red")
    await connect(room, "stay", "practitioner", stay)
    refs: list[weakref.ref[Any]] = []
    try:
        for i in range(CYCLES):
            peer = Peer("blue")
            participant = await connect(room, f"guest-{i}", "patient", peer)
            await peer.wait_video(2, 20)
            # a re-offer (reload, network change) replaces the connection: the old one must go
            refs += [weakref.ref(o) for o in owned(participant) if o is not participant]
            await peer.close()
            peer = Peer("green")
            await peer.accept(await participant.handle_offer(await peer.offer()))
            await peer.wait_video(2, 20)
            refs += [weakref.ref(o) for o in owned(participant)]
            participant.close()  # the tab closes
            await participant.wait_closed()
            await peer.close()
            del participant, peer
        await room.wait_closed()
        await asyncio.sleep(0.2)  # the closing tasks' last callbacks
        gc.collect()
        alive = [r() for r in refs if r() is not None]
        assert not alive, f"{len(alive)} of {len(refs)} objects survived: {sorted({type(o).__name__ for o in alive})}"
        # aiortc starts one decoder thread per receiver: only the staying pair's remain
        # (3 sections on its side, 3 on ours); the departed ones' 36 were joined
        assert len(decoder_threads()) <= 6
        assert [p.id for p in room.participants] == ["stay"]
    finally:
        room.close()
        await room.wait_closed()
        await stay.close()
