"""A Teleconsult server in a child process, for long benchmarks, and what it holds.

`start()` writes a loopback config, schedules one consultation per room
(`teleconsult demo --json`) and starts `served.py serve`: the app, plus a
file holding its asyncio task and live peer connection counts, rewritten every
second (neither is visible from outside the process).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
import bench_media as bm  # noqa: E402
from procs import stop, tail, wait_http  # noqa: E402

TELECONSULT = str(ROOT / ".venv" / "bin" / "teleconsult")


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base_url: str
    links: list[dict[str, str]]
    log: Path
    tasks_file: Path
    operator_url: str  # the operator's listener: /stats, /metrics

    def sample(self) -> dict[str, float]:
        """RSS, open descriptors, asyncio tasks, UDP sockets and live peer connections of the server."""
        pid = self.proc.pid
        inside = json.loads(self.tasks_file.read_text() or "{}")
        return {
            "rss_mb": round(bm.proc_rss_mb(pid), 1),
            "fds": len(os.listdir(f"/proc/{pid}/fd")),
            "tasks": inside.get("tasks", 0),
            "udp_sockets": len(udp_sockets(pid)),
            "peer_connections": inside.get("peer_connections", 0),
        }

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        stop(self.proc)

    def error(self) -> str | None:
        if self.proc.poll() is None:
            return None
        return f"server exited with code {self.proc.returncode}: {tail(self.log)}"


def udp_sockets(pid: int) -> list[dict[str, Any]]:
    """The UDP sockets a process holds: local (address, port) and the kernel's drop count."""
    table: dict[str, dict[str, Any]] = {}
    for name in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            host, port = f[1].split(":")
            address = socket.inet_ntop(socket.AF_INET, bytes.fromhex(host)[::-1]) if len(host) == 8 else host
            table[f[9]] = {"address": (address, int(port, 16)), "kernel_drops": int(f[-1])}
    held = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in table:
            held.append(table[link[8:-1]])
    return held


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, ports: tuple[int, int], extra: str = "", ice_ip: str = "127.0.0.1",
                 operator_port: int = 0) -> tuple[Path, int]:
    """A benchmark server's config.toml in `tmp` (HTTP on a free port of 127.0.0.1, one process, media on
    `ice_ip`, the operator's listener on `operator_port`, 0: none), and the HTTP port."""
    port = free_port()
    cfg = tmp / "config.toml"
    cfg.write_text(
        f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
        f'[storage]\ndata_dir = "{tmp / "data"}"\n'
        f'[ice]\nhost_addresses = ["{ice_ip}"]\nport_min = {ports[0]}\nport_max = {ports[1]}\n'
        f'[operator]\nport = {operator_port}\n[sfu]\nworkers = 1\n' + extra
    )
    return cfg, port


def demo_links(cfg: Path, rooms: int) -> list[dict[str, Any]]:
    """One new consultation per room (`teleconsult demo --json`): its practitioner and patient links."""
    return [json.loads(subprocess.run([TELECONSULT, "--log-level", "WARNING", "demo", "--json", "--config", str(cfg)],
                                      capture_output=True, text=True, check=True, timeout=60).stdout)
            for _ in range(rooms)]


def start(tmp: Path, rooms: int, ports: tuple[int, int], extra_config: str = "") -> Served:
    # one process (workers = 1): the leak counters (tasks, peer connections) are this process's objects
    operator = free_port()  # /stats and /metrics are on the operator's listener
    cfg, port = write_config(tmp, ports, extra_config, operator_port=operator)
    links = demo_links(cfg, rooms)
    log, tasks_file = tmp / "server.log", tmp / "tasks"
    tasks_file.write_text("{}")
    with log.open("ab") as f:
        proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve", str(cfg), str(tasks_file)],
                                stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log=log)
    except Exception:
        stop(proc)
        raise
    return Served(proc, f"http://127.0.0.1:{port}", links, log, tasks_file, f"http://127.0.0.1:{operator}")


def serve(config_path: Path, tasks_file: Path) -> None:
    """Run the app (INFO log, as `teleconsult serve`) and keep `tasks_file` up to date.

    It holds the number of asyncio tasks and of RTCPeerConnection objects still
    alive (after a collection, every 30 s): a leak shows there first.
    """
    import gc
    import logging

    from aiortc import RTCPeerConnection

    from aiohttp import web

    from heap_probe import HeapProbe

    from signaling.allocator import pin_malloc_thresholds
    from signaling.app import make_app
    from signaling.config import load_config

    pin_malloc_thresholds()  # as `teleconsult serve` does

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aioice").setLevel(logging.WARNING)
    config = load_config(config_path)

    # SOAK_DIAG=1: a report (heap_probe.py) whenever `<tasks_file>.diag` appears
    probe = HeapProbe(trace=os.environ.get("SOAK_DIAG_TRACE") == "1") if os.environ.get("SOAK_DIAG") == "1" else None
    diag_file = tasks_file.with_suffix(".diag")

    async def main() -> None:
        runner = web.AppRunner(make_app(config))
        await runner.setup()
        await web.TCPSite(runner, config.http.host, config.http.port).start()
        done = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
        pcs, tick = 0, 0
        try:
            while not done.is_set():
                extra: dict[str, Any] = {}
                asked = probe is not None and diag_file.exists()
                if tick % 30 == 0 or asked:  # a collection first: closed ones may wait in reference cycles
                    gc.collect()
                    pcs = sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))
                if asked and probe is not None:
                    diag_file.unlink()
                    extra = probe.report()
                tick += 1
                tasks_file.write_text(json.dumps({"tasks": len(asyncio.all_tasks()), "peer_connections": pcs, **extra}))
                try:
                    await asyncio.wait_for(done.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            await runner.cleanup()

    asyncio.run(main())


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    serve(Path(sys.argv[2]), Path(sys.argv[3]))
