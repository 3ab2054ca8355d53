"""A WebSocket client of the call's protocol, and the steps tests take with it."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

from helpers.media_peers import Peer
from helpers.server import Running
from signaling.keys import RECORDINGS


class Client:
    """One participant's WebSocket, as a browser tab would hold it."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.session, self.ws = session, ws
        self.pending: list[dict[str, Any]] = []  # read by open(), handed out first by recv()

    @classmethod
    async def open(cls, link: str, *, consent: bool = True) -> Client:
        """Connect; a patient accepts the teleconsultation notice at once unless `consent` is False."""
        session = aiohttp.ClientSession()
        ws = await session.ws_connect(link.replace("http://", "ws://") + "/ws")
        client = cls(session, ws)
        welcome = await client.recv("welcome")
        client.pending.append(welcome)
        if consent and welcome["role"] == "patient":
            await client.send(type="consent", decision="given",
                              version=welcome["notices"]["teleconsultation"]["version"])
        return client

    async def send(self, **msg: Any) -> None:
        await self.ws.send_str(json.dumps(msg))

    async def recv(self, kind: str | None = None, timeout: float = 10.0) -> dict[str, Any]:
        while self.pending:
            data = self.pending.pop(0)
            if kind is None or data["type"] == kind:
                return data
        while True:
            msg = await self.ws.receive(timeout=timeout)
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data: dict[str, Any] = json.loads(msg.data)
            if kind is None or data["type"] == kind:
                return data

    async def state(self, **expect: Any) -> dict[str, Any]:
        """The next state message matching `expect` (me=..., peer=..., connected=..., consultation=...)."""
        while True:
            s = await self.recv("state")
            view = {"me": s["self"]["stage"], "peer": s["peer"]["stage"],
                    "connected": s["peer"]["connected"], "consultation": s["consultation_state"]}
            if all(view[k] == v for k, v in expect.items()):
                return s

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


async def both(server: Running) -> tuple[dict[str, Any], Client, Client]:
    demo = await server.demo()
    doctor = await Client.open(demo["practitioner_link"])
    patient = await Client.open(demo["patient_link"])
    return demo, doctor, patient


async def enter_call(doctor: Client, patient: Client) -> None:
    await doctor.send(type="join")
    await patient.state(peer="joined")
    await patient.send(type="ready")
    await doctor.state(me="in_call")
    await patient.state(me="in_call")


async def negotiate(client: Client, peer: Peer) -> None:
    await client.send(type="offer", sdp=await peer.offer())
    await peer.accept((await client.recv("answer"))["sdp"])


async def in_call(server: Running) -> tuple[dict[str, Any], Client, Client]:
    demo = await server.demo()
    doctor = await Client.open(demo["practitioner_link"])
    patient = await Client.open(demo["patient_link"])
    await doctor.send(type="join")
    await patient.state(peer="joined")
    await patient.send(type="ready")
    for c in (doctor, patient):
        await c.state(me="in_call", peer="in_call")
    return demo, doctor, patient


async def recording_state(client: Client, state: str | None) -> dict[str, Any]:
    """The next `state` whose recording is in `state` (None: no recording)."""
    while True:
        s = await client.recv("state")
        rec = s["recording"]
        if (rec is None and state is None) or (rec is not None and rec["state"] == state):
            return s


async def wait_composed(server: Running, timeout: float = 60.0) -> dict[str, Any]:
    service = server.app[RECORDINGS]
    deadline = time.monotonic() + timeout
    while not service.composed and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert service.composed, "the recording was not composed"
    return dict(next(iter(service.composed.values())))
