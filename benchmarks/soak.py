"""Soak: 1:1 rooms of synthetic peers against one server for a long time, with churn.

Starts a Teleconsult server (a child process, served.py), schedules
one consultation per room, puts two synthetic aiortc peers in each call through
the WebSocket protocol (loadgen.py's peers: pre-encoded VP8 + Opus, nothing
encoded or decoded), and every `--churn` seconds makes one participant leave
(socket and peer connection closed, as a closed tab) and a new one join in its
place, rotating over rooms and sides.  Like a browser, a peer told that its
media failed makes a new offer, and one whose socket broke reconnects (counted
as repairs: on a loaded machine ICE consent checks and WebSocket pongs time out).  After `--warmup` it reads the server's
RSS, open file descriptors, asyncio tasks and UDP sockets (once every leg is
connected: see `settle`), prints a line every minute, and at the end the growth of each since the warm-up (issue 17 item 9:
under 5 %), plus whether media still flows in every room.  The warm-up churns too
(`--warmup-rejoins`): the server's heap grows during its first few dozen peer
connections and then stays flat (benchmarks/churn_memory.py shows the curve),
and that one-time growth is not what the soak looks for.

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/soak.py --quick'
    benchmarks/soak.py --duration 3600 --rooms 10       # the hour (default)
    SOAK_DIAG=1 benchmarks/soak.py --quick             # + heap reports on demand (served.py, heap_probe.py)

Only loopback addresses are used; run it in a network namespace as above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_media as bm  # noqa: E402
import loadgen as lg  # noqa: E402
import served  # noqa: E402

from sfu.ice import IcePolicy  # noqa: E402

SERVER_PORTS = (44000, 44999)
PEER_PORTS = (45000, 45999)


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
        await self.sides[side].close()
        await self.peers[side].close()
        conn = lg.OursSide(http, self.link["practitioner_link" if side == 0 else "patient_link"])
        self.sides[side] = conn
        await conn.open()
        state = await conn.expect(lambda m: m["type"] == "state")
        assert state["self"]["stage"] == "in_call", state  # the server kept the place
        await self._offer(side)

    async def repair(self, http: aiohttp.ClientSession) -> int:
        """What a browser does when its socket broke (reconnect) or the server says its media
        failed (a new offer).  Returns the repairs."""
        repaired = 0
        for side, conn in enumerate(self.sides):
            if conn.ws is None or conn.ws.closed:  # e.g. no pong in time on a starved machine
                await self.rejoin(side, http)
                repaired += 1
                continue
            failed = False
            while not conn.inbox.empty():
                msg = conn.inbox.get_nowait()
                failed = failed or (msg.get("type") == "media" and msg.get("state") != "connected")
            if failed:
                await self.peers[side].close()
                await self._offer(side)
                repaired += 1
        return repaired

    async def _offer(self, side: int) -> None:
        peer = lg.Peer(self.index, side, self.media)
        peer.other = self.peers[1 - side]
        self.peers[side] = peer
        conn = self.sides[side]
        pc = peer.product_pc()
        await conn.send(type="offer", sdp=await peer.offer(pc))
        answer = await conn.expect(lambda m: m["type"] == "answer")
        await pc.setRemoteDescription(lg.RTCSessionDescription(sdp=answer["sdp"], type="answer"))

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


async def settle(rooms: list[Room], server: served.Served, http: aiohttp.ClientSession,
                 timeout: float) -> tuple[bool, int]:
    """Repair until every leg is connected (one UDP socket each) and stays so for 5 s; (settled, repairs).

    Samples are only comparable in the same state: on a loaded machine legs
    drop (ICE consent) and come back, each with its socket, tasks and memory.
    """
    repairs, deadline, steady_since = 0, time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        for room in rooms:
            repairs += await asyncio.wait_for(room.repair(http), 30)
        if server.sample()["udp_sockets"] == 2 * len(rooms):
            steady_since = steady_since or time.monotonic()
            if time.monotonic() - steady_since >= 5:
                return True, repairs
        else:
            steady_since = None
        await asyncio.sleep(0.5)
    return False, repairs


def growth(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: round(100 * (b[k] - a[k]) / a[k], 1) if a[k] else 0.0 for k in a}


def small_media() -> bm.EncodedMedia:
    """160x120 VP8 at 15 fps (~120 kbit/s) and Opus: a soak's load, not a benchmark's."""
    return bm.encode_media(seconds=2.0, fps=15, width=160, height=120, kbps=120, gop=30)


async def drive(args: argparse.Namespace, server: served.Served) -> dict[str, Any]:
    media = small_media()
    http = aiohttp.ClientSession()
    rooms = [Room(i, link, media) for i, link in enumerate(server.links)]
    out: dict[str, Any] = {"rooms": len(rooms), "duration_s": args.duration, "churn_s": args.churn,
                           "video": f"{media.width}x{media.height} {media.fps} fps {media.video_kbps} kbit/s"}
    try:
        for room in rooms:
            await room.start(http)
        await lg.wait_flowing([p for r in rooms for p in r.peers], 4 * len(rooms), 60.0)
        print(f"[{time.strftime('%H:%M:%S')}] {len(rooms)} rooms in call; warm-up {args.warmup:.0f} s "
              f"with {args.warmup_rejoins} rejoins per room", flush=True)
        warm_until = time.monotonic() + args.warmup
        out["warmup_start"] = server.sample()
        # the server's heap only reaches its steady size after some dozens of peer connections
        # made and closed (glibc keeps what it was given, fragmented): a warm-up without churn
        # put that one-time growth in the measure (+19-27 % in 5 min, then flat)
        for turn in range(args.warmup_rejoins * len(rooms)):
            room = rooms[turn % len(rooms)]
            try:
                await asyncio.wait_for(room.rejoin((turn // len(rooms)) % 2, http), 30)
            except Exception as exc:  # a repair below brings it back
                print(f"warm-up rejoin in room {room.index}: {type(exc).__name__}: {exc}"[:300], flush=True)
            await room.repair(http)
        await asyncio.sleep(max(0.0, warm_until - time.monotonic()))
        print(f"[{time.strftime('%H:%M:%S')}] warm-up done {json.dumps(server.sample())}", flush=True)
        out["settled_at_start"], repairs = await settle(rooms, server, http, 180)
        start = server.sample()
        out["start"] = start
        print(f"[{time.strftime('%H:%M:%S')}] start {json.dumps(start)}", flush=True)
        t0 = time.monotonic()
        next_churn, next_print, turn, rejoins, failures = t0 + args.churn, t0 + 60, 0, 0, []
        while time.monotonic() - t0 < args.duration:
            now = time.monotonic()
            for room in rooms:
                try:
                    repairs += await asyncio.wait_for(room.repair(http), 30)
                except Exception as exc:
                    failures.append(f"repair in room {room.index}: {type(exc).__name__}: {exc}"[:300])
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
                s = server.sample()
                print(f"[{time.strftime('%H:%M:%S')}] {round(now - t0)} s {json.dumps(s)} rejoins {rejoins} "
                      f"repairs {repairs} failures {len(failures)}", flush=True)
            await asyncio.sleep(min(1.0, max(0.05, min(next_churn, next_print) - time.monotonic())))
        # every room, including the last one to churn, must carry media both ways
        out["settled_at_end"], repaired = await settle(rooms, server, http, 180)
        repairs += repaired
        for room in rooms:
            room.reset()
        await asyncio.sleep(5)
        end = server.sample()
        out.update({
            "end": end, "growth_pct": growth(start, end), "rejoins": rejoins, "failures": failures[:20],
            "repairs": repairs,
            "rooms_flowing": sum(r.flowing() for r in rooms),
        })
    finally:
        await asyncio.gather(*(r.close() for r in rooms), return_exceptions=True)
        await http.close()
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", type=int, default=10)
    p.add_argument("--duration", type=float, default=3600.0, help="seconds measured after the warm-up")
    p.add_argument("--quick", action="store_true", help="5 minutes instead of --duration")
    p.add_argument("--warmup", type=float, default=60.0, help="seconds before the first measure (at least)")
    p.add_argument("--warmup-rejoins", type=int, default=3,
                   help="rejoins per room during the warm-up (0: none, as before)")
    p.add_argument("--churn", type=float, default=60.0, help="seconds between one participant leaving and rejoining")
    args = p.parse_args()
    if args.quick:
        args.duration = 300.0
    IcePolicy(addresses=["127.0.0.1"], port_min=PEER_PORTS[0], port_max=PEER_PORTS[1]).install()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        server = served.start(Path(tmp), args.rooms, SERVER_PORTS)
        try:
            limit = args.warmup + 30 * args.warmup_rejoins * args.rooms + args.duration + 480 + 10 * args.rooms
            result = asyncio.run(asyncio.wait_for(drive(args, server), limit))
            text = server.log_text()
            result["server_log_lines"] = len(text.splitlines())
            result["server_tracebacks"] = text.count("Traceback")
            result["error"] = server.error()
        finally:
            server.stop()
    print(json.dumps(result), flush=True)
    worst = max(result["growth_pct"].values())
    print(f"growth after warm-up: {result['growth_pct']} (worst {worst} %, target < 5 %); "
          f"rooms with media both ways at the end: {result['rooms_flowing']}/{result['rooms']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
