"""A multi-node site for tests: `teleconsult serve` processes behind a loopback balancer.

Each node is a real `teleconsult serve` child process with its own config file
(HTTP port, UDP range, data_dir), all sharing one PostgreSQL schema, one Redis,
one documents/whiteboard folder and the balancer's address as `[cluster] site_url`.
Nodes are stopped by their PID: SIGTERM (a clean drain), or SIGKILL (a crash).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .balancer import Balancer
from .databases import PostgresServer, RedisServer
from .server import free_port

# short enough for a takeover within a couple of seconds in tests
HEARTBEAT_S = 0.25
TTL_S = 1.0


def toml(settings: dict[str, dict[str, Any]]) -> str:
    """A config file from {section: {key: value}} (JSON strings, numbers and lists are valid TOML)."""
    lines = []
    for section, values in settings.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@dataclass
class Node:
    name: str
    port: int
    config: Path
    log: Path
    process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("ab") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "signaling.cli", "serve", "--config", str(self.config),
                stdout=out, stderr=asyncio.subprocess.STDOUT, env=env)
        async with aiohttp.ClientSession() as http:
            for _ in range(300):  # up to 30 s to listen (2 shared cores)
                if self.process.returncode is not None:
                    break
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(self.base_url + "/healthz") as r:
                        if r.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise AssertionError(f"node {self.name} did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """A crash: SIGKILL, no goodbye."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM and wait (SIGKILL past `timeout`); its exit code."""
        process = self.process
        if process is None:
            return None
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
        return process.returncode


@dataclass
class Site:
    nodes: list[Node]
    balancer: Balancer
    redis_url: str
    demo: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.balancer.port}"

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    async def owner(self, consultation_id: str) -> str | None:
        """Which node owns a consultation now, read from Redis."""
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.redis_url, decode_responses=True)
        try:
            value = await client.get(f"teleconsult:owner:{consultation_id}")
        finally:
            await client.aclose()
        return None if value is None else str(value)


async def _demo(config: Path) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "demo", "--json", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    data: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return data


@asynccontextmanager
async def two_node_site(tmp_path: Path, postgres: PostgresServer, redis: RedisServer,
                        **extra: dict[str, Any]) -> AsyncIterator[Site]:
    """Nodes "node-a" and "node-b" running, the demo practice created; `extra`: more config sections ("mail.smtp")."""
    ports = [free_port(), free_port()]
    database = postgres.new_schema()
    shared = tmp_path / "shared"
    async with AsyncExitStack() as stack:
        balancer = await stack.enter_async_context(Balancer(ports).running())
        nodes = []
        for (name, udp), port in zip((("node-a", 44000), ("node-b", 44500)), ports, strict=True):
            folder = tmp_path / name
            folder.mkdir(parents=True)
            settings: dict[str, dict[str, Any]] = {
                "http": {"host": "127.0.0.1", "port": port, "public_url": f"http://127.0.0.1:{port}"},
                "storage": {"data_dir": str(folder / "data"), "documents_dir": str(shared / "documents"),
                            "whiteboard_dir": str(shared / "whiteboard")},
                "database": {"url": database},
                "cluster": {"redis_url": redis.url, "node_id": name, "heartbeat_seconds": HEARTBEAT_S,
                            "node_ttl_seconds": TTL_S, "site_url": f"http://127.0.0.1:{balancer.port}"},
                "ice": {"host_addresses": ["127.0.0.1"], "port_min": udp, "port_max": udp + 499},
                "operator": {"port": 0},
            }
            for section, values in extra.items():
                settings[section] = {**settings.get(section, {}), **values}
            config = folder / "config.toml"
            config.write_text(toml(settings))
            nodes.append(Node(name, port, config, folder / "serve.log"))
        site = Site(nodes, balancer, redis.url)
        site.demo = await _demo(nodes[0].config)
        try:
            await asyncio.gather(*(node.start() for node in nodes))
            yield site
        except BaseException:
            for node in nodes:  # what each node said, for the failure report
                print(f"--- {node.name} log (end) ---\n{node.log.read_text()[-4000:]}")
            raise
        finally:
            for node in nodes:
                await node.stop()
