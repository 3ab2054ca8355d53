"""A real Teleconsult server on a loopback port, inside the test's event loop."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from clinic import Clinic
from signaling.accesslog import RedactingAccessLogger
from signaling.app import make_app
from signaling.config import Config, load_config
from signaling.keys import CLINIC, HUBS, OPERATOR_URL, PROBE_DROP_RATE


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


# Ports the kernel never picks by itself: a port it chose (bind to port 0) lies in its
# ephemeral range, where the next outgoing connection or any socket bound to port 0 may
# take it between our check and the server's bind (CI failed with EADDRINUSE on one).
# (A machine whose ephemeral range starts below 21000 gets 20000..32767 all the same.)
_LOW: Final = _ephemeral_low()
_PORTS: Final = range(20000, min(_LOW, 32768) if _LOW > 21000 else 32768)
_handed: set[int] = set()
_next = random.Random(os.getpid()).randrange(len(_PORTS))


def _bindable(port: int) -> bool:
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            if kind == socket.SOCK_STREAM:  # as servers bind (a closed listener's TIME_WAIT is no obstacle)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def free_port() -> int:
    """A loopback port free for both TCP and UDP, outside the kernel's ephemeral range, new in this run."""
    global _next
    for _ in range(len(_PORTS)):
        port = _PORTS[_next % len(_PORTS)]
        _next += 1
        if port not in _handed and _bindable(port):
            _handed.add(port)
            return port
    raise RuntimeError(f"no free port left in {_PORTS.start}..{_PORTS.stop - 1}")


@dataclass
class Running:
    app: web.Application
    config: Config
    base_url: str

    @property
    def clinic(self) -> Clinic:
        return self.app[CLINIC]

    @property
    def operator_url(self) -> str:
        """The operator's listener (/metrics, /stats, /mail/status, /readyz) of this server."""
        return self.app[OPERATOR_URL]

    @property
    def hubs(self) -> Any:
        return self.app[HUBS]

    async def demo(self) -> dict[str, Any]:
        return (await self.clinic.ensure_demo(self.base_url, self.config.data_path)).as_json()


@asynccontextmanager
async def running_server(data_dir: Path, *, probe_drop_rate: float = 0.0, **overrides: Any) -> AsyncIterator[Running]:
    """Serve the app on a free loopback port; `overrides` are dotted config keys.

    `probe_drop_rate` makes the connection test's server side drop that share of
    its packets (an app setting, not a config key: production never has it).
    """
    port = free_port()
    settings = {
        "http.host": "127.0.0.1",
        "http.port": port,
        "http.public_url": f"http://127.0.0.1:{port}",
        "storage.data_dir": str(data_dir),
        "ice.host_addresses": ["127.0.0.1"],
        "ice.port_min": 43000,
        "ice.port_max": 43999,
        "operator.port": 0,
        **overrides,
    }
    config = load_config(None, **settings)
    app = make_app(config)
    app[PROBE_DROP_RATE] = probe_drop_rate
    runner = web.AppRunner(app, access_log_class=RedactingAccessLogger)  # as `teleconsult serve`
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield Running(app, config, f"http://127.0.0.1:{port}")
    finally:
        await runner.cleanup()
