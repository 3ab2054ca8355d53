"""Soak: 1:1 rooms of synthetic peers against one server for a long time, with churn.

Starts a Teleconsult server (a child process: this script with `serve`), schedules
one consultation per room, puts two synthetic aiortc peers in each call through
the WebSocket protocol (loadgen.py's peers: pre-encoded VP8 + Opus, nothing
encoded or decoded), and every `--churn` seconds makes one participant leave
(socket and peer connection closed, as a closed tab) and a new one join in its
place, rotating over rooms and sides.  After `--warmup` it reads the server's
RSS, open file descriptors, asyncio tasks and UDP sockets, prints a line every
minute, and at the end the growth of each since the warm-up (issue 17 item 9:
under 5 %), plus whether media still flows in every room.

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/soak.py --quick'
    benchmarks/soak.py --duration 3600 --rooms 10       # the hour (default)

Only loopback addresses are used; run it in a network namespace as above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
import bench_media as bm  # noqa: E402
import loadgen as lg  # noqa: E402
from procs import stop, tail, wait_http  # noqa: E402

from sfu.ice import IcePolicy  # noqa: E402

TELECONSULT = str(ROOT / ".venv" / "bin" / "teleconsult")
SERVER_PORTS = (44000, 44999)
PEER_PORTS = "45000-45999"


# ---------------------------------------------------------------- the server (child process)

def serve(config_path: Path, tasks_file: Path) -> None:
    """Run the app and write its asyncio task count to `tasks_file` every second."""
    import logging

    from aiohttp import web

    from signaling.app import make_app
    from signaling.config import load_config

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(config_path)

    async def main() -> None:
        runner = web.AppRunner(make_app(config))
        await runner.setup()
        await web.TCPSite(runner, config.http.host, config.http.port).start()
        done = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, done.set)
        try:
            while not done.is_set():
                tasks_file.write_text(str(len(asyncio.all_tasks())))
                try:
                    await asyncio.wait_for(done.wait(), 1.0)
                except asyncio.TimeoutError:
                    pass
        finally:
            await runner.cleanup()

    asyncio.run(main())


# ---------------------------------------------------------------- measuring it

def udp_sockets(pid: int) -> int:
    inodes = set()
    for name in ("udp", "udp6"):
        try:
            lines = Path(f"/proc/{pid}/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        inodes.update(line.split()[9] for line in lines)
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            count += 1
    return count


def sample(pid: int, tasks_file: Path) -> dict[str, float]:
    return {
        "rss_mb": round(bm.proc_rss_mb(pid), 1),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "tasks": int(tasks_file.read_text() or 0),
        "udp_sockets": udp_sockets(pid),
    }


# ---------------------------------------------------------------- the peers

class Room:
    """One consultation: its links and, for each side, the current peer and socket."""

    def __init__(self, index: int, link: dict[str, str], media: bm.EncodedMedia) -> None:
        self.index, self.link, self.media = index, link, media
        self.peers: list[lg.Peer] = []
        self.sides: list[lg.OursSide] = []

    async def start(self, http: aiohttp.ClientSession) -> None:
        a, b = lg.Peer(self.index, 0, self.media), lg.Peer(self.index, 1, self.media)
        a.other, b.other = b, a
        self.peers = [a, b]
        self.sides = []
        await lg.connect_ours(a, b, self.link, http, self.sides)

    async def rejoin(self, side: int, http: aiohttp.ClientSession) -> None:
        """The participant on `side` closes its tab; a new one opens the same link and offers."""
        from sfu.participant import SOURCES

        old_peer, old_side = self.peers[side], self.sides[side]
        await old_side.close()
        await old_peer.close()
        peer = lg.Peer(self.index, side, self.media)
        peer.other = self.peers[1 - side]
        conn = lg.OursSide(http, self.link["practitioner_link" if side == 0 else "patient_link"])
        await conn.open()
        state = await conn.expect(lambda m: m["type"] == "state")
        assert state["self"]["stage"] == "in_call", state  # the server kept the place
        pc = peer.new_pc()
        for source, kind in SOURCES:
            if source in ("mic", "camera"):
                peer.add_send(pc, kind)
            else:
                t = pc.addTransceiver(kind, direction="recvonly")
                t.setCodecPreferences(lg._caps(kind))
                peer.silent.append(t)
        await conn.send(type="offer", sdp=await peer.offer(pc))
        answer = await conn.expect(lambda m: m["type"] == "answer")
        await pc.setRemoteDescription(lg.RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        self.peers[side], self.sides[side] = peer, conn

    def flowing(self) -> bool:
        """Every stream of both current peers got frames since the last `reset()`."""
        meters = [m for p in self.peers for m in p.meters]
        return len(meters) == 4 and all(m.frames > 0 for m in meters)

    def reset(self) -> None:
        for p in self.peers:
            for m in p.meters:
                m.reset_window()

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.sides), return_exceptions=True)
        await asyncio.gather(*(p.close() for p in self.peers), return_exceptions=True)


def growth(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(100 * (b[k] - a[k]) / a[k], 1) if a[k] else 0.0 for k in a}


async def drive(args: argparse.Namespace, pid: int, links: list[dict[str, str]], tasks_file: Path) -> dict[str, Any]:
    media = bm.encode_media(seconds=2.0, fps=15, width=160, height=120, kbps=120, gop=30)
    http = aiohttp.ClientSession()
    rooms = [Room(i, link, media) for i, link in enumerate(links)]
    out: dict[str, Any] = {"rooms": len(rooms), "duration_s": args.duration, "churn_s": args.churn,
                           "video": f"{media.width}x{media.height} {media.fps} fps {media.video_kbps} kbit/s"}
    try:
        for room in rooms:
            await room.start(http)
        await lg.wait_flowing([p for r in rooms for p in r.peers], 4 * len(rooms), 60.0)
        print(f"[{time.strftime('%H:%M:%S')}] {len(rooms)} rooms in call; warm-up {args.warmup:.0f} s", flush=True)
        await asyncio.sleep(args.warmup)
        start = sample(pid, tasks_file)
        out["start"] = start
        print(f"[{time.strftime('%H:%M:%S')}] start {json.dumps(start)}", flush=True)
        t0 = time.monotonic()
        next_churn, next_print, turn, rejoins, failures = t0 + args.churn, t0 + 60, 0, 0, []
        while time.monotonic() - t0 < args.duration:
            now = time.monotonic()
            if now >= next_churn:
                room = rooms[turn % len(rooms)]
                side = (turn // len(rooms)) % 2
                turn += 1
                next_churn += args.churn
                try:
                    await asyncio.wait_for(room.rejoin(side, http), 30)
                    rejoins += 1
                except Exception as exc:  # reported, and the soak goes on
                    failures.append(f"room {room.index} side {side}: {type(exc).__name__}: {exc}"[:300])
            if now >= next_print:
                next_print += 60
                s = sample(pid, tasks_file)
                print(f"[{time.strftime('%H:%M:%S')}] {round(now - t0)} s {json.dumps(s)} rejoins {rejoins}",
                      flush=True)
            await asyncio.sleep(min(1.0, max(0.05, min(next_churn, next_print) - time.monotonic())))
        # every room, including the last one to churn, must carry media both ways
        await asyncio.sleep(5)
        for room in rooms:
            room.reset()
        await asyncio.sleep(5)
        end = sample(pid, tasks_file)
        out.update({
            "end": end, "growth_pct": growth(start, end), "rejoins": rejoins, "rejoin_failures": failures,
            "rooms_flowing": sum(r.flowing() for r in rooms),
        })
    finally:
        await asyncio.gather(*(r.close() for r in rooms), return_exceptions=True)
        await http.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    srv = sub.add_parser("serve", help="(internal) the server process")
    srv.add_argument("--config", required=True)
    srv.add_argument("--tasks-file", required=True)
    p.add_argument("--rooms", type=int, default=10)
    p.add_argument("--duration", type=float, default=3600.0, help="seconds measured after the warm-up")
    p.add_argument("--quick", action="store_true", help="5 minutes instead of --duration")
    p.add_argument("--warmup", type=float, default=60.0)
    p.add_argument("--churn", type=float, default=60.0, help="seconds between one participant leaving and rejoining")
    args = p.parse_args()
    if args.command == "serve":
        serve(Path(args.config), Path(args.tasks_file))
        return 0
    if args.quick:
        args.duration = 300.0
    lo, hi = (int(x) for x in PEER_PORTS.split("-"))
    IcePolicy(addresses=["127.0.0.1"], port_min=lo, port_max=hi).install()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp_name:
        tmp = Path(tmp_name)
        port = lg_free_port()
        cfg = tmp / "config.toml"
        cfg.write_text(
            f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
            f'[storage]\ndata_dir = "{tmp / "data"}"\n'
            f'[ice]\nhost_addresses = ["127.0.0.1"]\nport_min = {SERVER_PORTS[0]}\nport_max = {SERVER_PORTS[1]}\n'
        )
        links = []
        for _ in range(args.rooms):
            res = subprocess.run([TELECONSULT, "--log-level", "WARNING", "demo", "--json", "--config", str(cfg)],
                                 capture_output=True, text=True, check=True, timeout=60)
            links.append(json.loads(res.stdout))
        log, tasks_file = tmp / "server.log", tmp / "tasks"
        tasks_file.write_text("0")
        proc: subprocess.Popen[bytes] | None = None
        try:
            with log.open("ab") as f:
                proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "serve", "--config", str(cfg),
                                         "--tasks-file", str(tasks_file)], stdout=f, stderr=subprocess.STDOUT)
            wait_http(f"http://127.0.0.1:{port}/healthz", proc, log=log)
            limit = args.warmup + args.duration + 120 + 10 * args.rooms  # every loop is bounded
            result = asyncio.run(asyncio.wait_for(drive(args, proc.pid, links, tasks_file), limit))
            result["server_log_lines"] = len(log.read_text(errors="replace").splitlines())
            result["server_tracebacks"] = log.read_text(errors="replace").count("Traceback")
            if proc.poll() is not None:
                result["error"] = f"server exited with code {proc.returncode}: {tail(log)}"
        finally:
            stop(proc)
    print(json.dumps(result), flush=True)
    worst = max(result["growth_pct"].values())
    print(f"growth after warm-up: {result['growth_pct']} (worst {worst} %, target < 5 %); "
          f"rooms with media both ways at the end: {result['rooms_flowing']}/{result['rooms']}", flush=True)
    return 0


def lg_free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
