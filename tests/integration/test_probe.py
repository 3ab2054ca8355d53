"""The connection test's server side with a real aiortc peer: direct, and through the WebSocket."""

from __future__ import annotations

import asyncio
import json
import random
import struct
import time
from pathlib import Path
from typing import Any

import pytest
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from helpers.server import running_server
from helpers.ws_client import Client

from sfu import ConnectionProbe, MediaError
from sfu.probe import DOWN_PACKETS, PACKET_BYTES


class ProbeClient:
    """What the browser does (web/js/nettest.js), with aiortc: one unordered, unreliable channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.channel: RTCDataChannel = self.pc.createDataChannel("probe", ordered=False, maxRetransmits=0)
        self.text: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.down: set[int] = set()
        self.opened = asyncio.Event()
        self.channel.on("open", self.opened.set)

        @self.channel.on("message")
        def on_message(data: str | bytes) -> None:
            if isinstance(data, bytes):
                self.down.add(struct.unpack_from("!I", data)[0])
            else:
                self.text.put_nowait(json.loads(data))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        assert self.pc.localDescription is not None
        return self.pc.localDescription.sdp

    async def accept(self, sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        await asyncio.wait_for(self.opened.wait(), 5)

    async def expect(self, kind: str, timeout: float = 3.0) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                msg = await asyncio.wait_for(self.text.get(), left)
            except asyncio.TimeoutError:
                return None
            if msg["t"] == kind:
                return msg
        return None

    async def measure(self, pings: int = 15, up_packets: int = 150) -> dict[str, Any]:
        pongs = 0
        for n in range(pings):
            self.channel.send(json.dumps({"t": "ping", "n": n}))
            if await self.expect("pong", 0.3):
                pongs += 1
        for seq in range(up_packets):
            self.channel.send(struct.pack("!I", seq) + bytes(PACKET_BYTES - 4))
            await asyncio.sleep(0.008)
        result = None
        for _ in range(5):  # the control message may be lost too: repeat it
            self.channel.send(json.dumps({"t": "up-done", "sent": up_packets}))
            if (result := await self.expect("up-result", 0.5)) is not None:
                break
        assert result is not None
        self.channel.send(json.dumps({"t": "down"}))
        done = await self.expect("down-done", 5.0)
        assert done is not None and done["sent"] == DOWN_PACKETS
        await asyncio.sleep(0.2)
        return {"pongs": pongs, "up": result, "down": len(self.down)}

    async def close(self) -> None:
        await self.pc.close()


async def test_probe_echoes_counts_and_sends() -> None:
    probe = ConnectionProbe("t1")
    client = ProbeClient()
    try:
        await client.accept(await probe.answer(await client.offer()))
        got = await client.measure()
        assert got["pongs"] == 15
        assert got["up"]["received"] == 150 and got["up"]["bytes"] == 150 * PACKET_BYTES
        assert got["up"]["kbps"] > 0
        assert got["down"] == DOWN_PACKETS
        client.channel.send(json.dumps({"t": "bye"}))
        for _ in range(50):
            if probe.closed:
                break
            await asyncio.sleep(0.02)
        assert probe.closed
    finally:
        probe.close()
        probe.close()  # twice is fine
        await probe.wait_closed()
        await client.close()


async def test_probe_drop_rate_loses_packets_both_ways() -> None:
    probe = ConnectionProbe("t2", drop_rate=0.3, rng=random.Random(7))
    client = ProbeClient()
    try:
        await client.accept(await probe.answer(await client.offer()))
        got = await client.measure(up_packets=200)
        assert 0 < got["pongs"] < 15
        assert 100 < got["up"]["received"] < 180
        assert 140 < got["down"] < 225
    finally:
        probe.close()
        await probe.wait_closed()
        await client.close()


async def test_probe_closes_itself_after_its_timeout() -> None:
    probe = ConnectionProbe("t3", timeout=0.5)
    client = ProbeClient()
    try:
        await client.accept(await probe.answer(await client.offer()))
        await asyncio.sleep(0.8)
        assert probe.closed and probe.pc is None
    finally:
        probe.close()
        await probe.wait_closed()
        await client.close()


@pytest.mark.parametrize("sdp", ["garbage", "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"])
async def test_probe_refuses_an_offer_without_one_data_channel(sdp: str) -> None:
    probe = ConnectionProbe("t4")
    with pytest.raises(MediaError):
        await probe.answer(sdp)
    probe.close()


def test_probe_checks_its_options() -> None:
    with pytest.raises(ValueError, match="drop_rate"):
        ConnectionProbe("x", drop_rate=1.0)
    with pytest.raises(ValueError, match="timeout"):
        ConnectionProbe("x", timeout=0)


async def test_probe_over_the_websocket_in_the_waiting_room(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient = await Client.open(demo["patient_link"])
        await patient.state()
        client = ProbeClient()
        try:
            await patient.send(type="probe-offer", sdp=await client.offer(), id="p1")
            answer = await patient.recv("probe-answer")
            await client.accept(answer["sdp"])
            got = await client.measure(pings=10, up_packets=50)
            assert got["pongs"] == 10 and got["up"]["received"] == 50
            # a bad offer is refused with an error naming the message
            await patient.send(type="probe-offer", sdp="v=0", id="p2")
            error = await patient.recv("error")
            assert (error["code"], error["ref_type"], error["ref_id"]) == ("media-error", "probe-offer", "p2")
        finally:
            await client.close()
            await patient.close()


async def test_probe_drop_rate_comes_from_the_app_setting(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", probe_drop_rate=0.3) as server:
        demo = await server.demo()
        patient = await Client.open(demo["patient_link"])
        await patient.state()
        client = ProbeClient()
        try:
            await patient.send(type="probe-offer", sdp=await client.offer())
            await client.accept((await patient.recv("probe-answer"))["sdp"])
            got = await client.measure(pings=10, up_packets=100)
            assert got["up"]["received"] < 95
        finally:
            await client.close()
            await patient.close()
