"""A real `teleconsult serve` node stopped with SIGTERM hands its live consultation over (issue 15 item 4)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from typing import Any

import aiohttp
from helpers.databases import PostgresServer, RedisServer
from helpers.site import two_node_site


async def until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    """The next message of this type (at most 50 messages, 10 s each)."""
    for _ in range(50):
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.TEXT, msg
        data: dict[str, Any] = json.loads(msg.data)
        if data["type"] == kind:
            return data
    raise AssertionError(f"no {kind} message")


async def test_a_node_stopped_with_sigterm_tells_its_browsers_and_hands_the_consultation_over(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    async with two_node_site(tmp_path, postgres_server, redis_server) as site:
        a = site.node("node-a")
        consultation = site.demo["consultation_id"]
        path = site.demo["patient_link"].removeprefix(a.base_url)
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(a.base_url.replace("http", "ws") + path + "/ws")
            welcome = await until(ws, "welcome")
            assert welcome["site_url"] == site.url
            assert await site.owner(consultation) == "node-a"
            assert a.process is not None
            a.process.send_signal(signal.SIGTERM)
            assert await until(ws, "reconnect") == {"type": "reconnect", "reason": "node-stopping"}
            assert (await ws.receive(timeout=10)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert ws.close_code == 1001
            # node A exits by itself, in bounded time, having left the registry and its claim
            assert await asyncio.wait_for(a.process.wait(), 15) == 0
            assert await site.owner(consultation) is None
            # through the site's address the browser lands on node B, which takes the consultation
            again = await http.ws_connect(site.url.replace("http", "ws") + path + "/ws")
            assert (await until(again, "welcome"))["consultation_id"] == consultation
            assert await site.owner(consultation) == "node-b"
            await again.close()
            await ws.close()
        log = a.log.read_text()
        assert "Node node-a is draining" in log and "Node node-a left the cluster" in log
