"""A real Teleconsult server on a loopback port, inside the test's event loop."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from clinic import Clinic
from signaling.accesslog import RedactingAccessLogger
from signaling.app import make_app
from signaling.config import Config, load_config
from signaling.keys import CLINIC, HUBS, OPERATOR_URL, PROBE_DROP_RATE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
