"""A tiny TCP load balancer on loopback: each new connection goes to the next live node.

Round robin over the nodes' ports; a node that refuses the connection (dead) is
skipped for that connection. No stickiness, no health checks: like a plain L4
balancer in front of several `teleconsult serve` nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager


class Balancer:
    """Listens on 127.0.0.1:`port`, forwards to 127.0.0.1:each of `ports` in turn."""

    def __init__(self, ports: Sequence[int]) -> None:
        self._ports = list(ports)
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        # which node port each accepted connection went to, in order (tests read it)
        self.routed: list[int] = []

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        # this connection's order, fixed before any await (connections arrive together)
        start = self._next % len(self._ports)
        self._next += 1
        for port in self._ports[start:] + self._ports[:start]:
            try:
                streams = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2.0)
            except (OSError, TimeoutError):
                continue  # dead node: try the next one
            self.routed.append(port)
            return streams
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream = await self._connect()
        if upstream is None:
            print("balancer: no live node")
            writer.close()
            return
        up_reader, up_writer = upstream

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.create_task(self._serve(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Balancer]:
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(server.sockets[0].getsockname()[1])
        try:
            yield self
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await server.wait_closed()
