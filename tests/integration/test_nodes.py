"""Two real server nodes sharing one PostgreSQL, one Redis and one documents folder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from helpers.databases import PostgresServer, RedisServer, make
from helpers.event_stream import next_event
from helpers.practice import Browserless
from helpers.server import Running, running_server
from helpers.ws_client import Client

from signaling.keys import CLUSTER


@asynccontextmanager
async def two_nodes(tmp_path: Path, postgres_server: PostgresServer,
                    redis_server: RedisServer) -> AsyncIterator[tuple[Running, Running]]:
    database = make("postgresql", tmp_path, postgres_server)
    shared = {
        "database.url": str(database.target),
        "storage.documents_dir": str(tmp_path / "shared" / "documents"),
        "storage.whiteboard_dir": str(tmp_path / "shared" / "whiteboard"),
        "cluster.redis_url": redis_server.url,
        "cluster.heartbeat_seconds": 0.2,
        "cluster.node_ttl_seconds": 1.0,
    }
    async with AsyncExitStack() as stack:
        nodes = [await stack.enter_async_context(running_server(
            tmp_path / name, **shared, **{"cluster.node_id": name, "ice.port_min": port, "ice.port_max": port + 499}))
            for name, port in (("node-a", 43000), ("node-b", 43500))]
        yield nodes[0], nodes[1]


async def test_a_patient_waiting_on_node_b_shows_on_node_a_day_list(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    async with two_nodes(tmp_path, postgres_server, redis_server) as (a, b):
        assert [n.node_id for n in await a.app[CLUSTER].nodes()] == ["node-a", "node-b"]
        demo = await a.demo()
        doctor = Browserless(a.base_url)
        async with aiohttp.ClientSession() as session:
            try:
                response = await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])
                assert response.status == 303

                async def status() -> dict[str, Any]:
                    async with doctor.session.get(a.base_url + "/day/status") as r:
                        data: dict[str, Any] = await r.json()
                    return data[demo["consultation_id"]]

                assert (await status())["status"] == "absent"
                # the patient's browser lands on node B
                link = demo["patient_link"].replace(a.base_url, b.base_url)
                ws = await session.ws_connect(link.replace("http://", "ws://") + "/ws")
                welcome = json.loads((await ws.receive(timeout=10)).data)
                assert welcome["type"] == "welcome"
                assert b.hubs.find(demo["consultation_id"]) is not None
                assert a.hubs.find(demo["consultation_id"]) is None
                seen = None
                for _ in range(50):  # node B publishes at its next heartbeat (bounded: 5 s)
                    seen = await status()
                    if seen["status"] == "waiting-room":
                        break
                    await asyncio.sleep(0.1)
                assert seen == {"status": "waiting-room", "readiness": "untested"}
                _, page = await doctor.get("/")
                assert 'data-status="waiting-room"' in page
                await ws.close()
                for _ in range(50):  # gone from node B: absent again everywhere
                    seen = await status()
                    if seen["status"] == "absent":
                        break
                    await asyncio.sleep(0.1)
                assert seen["status"] == "absent"
            finally:
                await doctor.close()


async def test_an_arrival_on_node_b_is_pushed_to_the_day_list_open_on_node_a(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    """Issue 20 item 3: node A's event stream learns of node B's hub through the cluster's presence."""
    async with two_nodes(tmp_path, postgres_server, redis_server) as (a, b):
        demo = await a.demo()
        doctor = Browserless(a.base_url)
        patient = None
        try:
            assert (await doctor.login(demo["practitioner"]["email"], demo["practitioner"]["password"])).status == 303
            stream = await doctor.session.get(a.base_url + "/day/events")
            assert (await next_event(stream, "status"))[demo["consultation_id"]]["status"] == "absent"
            patient = await Client.open(demo["patient_link"].replace(a.base_url, b.base_url))
            assert b.hubs.find(demo["consultation_id"]) is not None and a.hubs.find(demo["consultation_id"]) is None
            # node A looks at the presence every heartbeat (0.2 s here): bounded wait
            assert await next_event(stream, "arrival", timeout=5) == {"consultation": demo["consultation_id"]}
            stream.close()
        finally:
            if patient is not None:
                await patient.close()
            await doctor.close()


async def test_a_consultation_is_served_by_one_node_and_the_others_send_browsers_there(
    tmp_path: Path, postgres_server: PostgresServer, redis_server: RedisServer
) -> None:
    async with two_nodes(tmp_path, postgres_server, redis_server) as (a, b):
        demo = await a.demo()
        path = demo["practitioner_link"].removeprefix(a.base_url)
        async with aiohttp.ClientSession() as session:
            # nobody there yet: node A serves its own page
            async with session.get(a.base_url + path, allow_redirects=False) as r:
                assert r.status == 200
            # the patient connects on node B, which claims the consultation
            ws = await session.ws_connect(demo["patient_link"].replace(a.base_url, b.base_url)
                                          .replace("http://", "ws://") + "/ws")
            assert json.loads((await ws.receive(timeout=10)).data)["type"] == "welcome"
            assert await b.app[CLUSTER].owner(demo["consultation_id"]) == "node-b"
            # the practitioner's page on node A now sends the browser to node B
            async with session.get(a.base_url + path + "?x=1", allow_redirects=False) as r:
                assert r.status == 307 and r.headers["Location"] == b.base_url + path + "?x=1"
            # and node A refuses a socket for a consultation it does not serve
            async with session.get(a.base_url + path + "/ws") as r:
                assert r.status == 409
            assert a.hubs.find(demo["consultation_id"]) is None
            await ws.close()
            for _ in range(50):  # node B hands it back when its last socket closed (bounded)
                if await a.app[CLUSTER].owner(demo["consultation_id"]) is None:
                    break
                await asyncio.sleep(0.1)
            async with session.get(a.base_url + path, allow_redirects=False) as r:
                assert r.status == 200
