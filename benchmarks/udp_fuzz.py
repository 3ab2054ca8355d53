"""UDP fuzz of the media ports: 100,000 hostile datagrams during a real call (issue 17).

Starts a server (served.py), puts two synthetic aiortc peers in a call through
the WebSocket protocol, finds the server's UDP ports from /proc (the process's
sockets), then sends: one empty datagram alone, and `--datagrams` random and
mutated ones (tests/helpers/fuzz_datagrams.py: empty, noise, STUN with bad attributes, RTP and
RTCP headers with random fields up to 9,000 bytes, DTLS-looking records), half
from a stranger's socket and half from the legs' own sockets (a spoofed source).
Prints the datagrams sent per shape, the server's drops per kind (/stats),
kernel drops (socket buffer full), the tracebacks and lines the server logged
(tracebacks must be 0) and whether the call survived (media both ways, both
legs "connected").

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/udp_fuzz.py'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import loadgen as lg  # noqa: E402
import served  # noqa: E402
import soak  # noqa: E402
from helpers.fuzz_datagrams import Sprayer, datagrams, leg_socket, rtp, stun_valid_shape  # noqa: E402

from sfu.ice import IcePolicy  # noqa: E402

SERVER_PORTS = (46000, 46099)
PEER_PORTS = (46100, 46199)


async def stats(http: aiohttp.ClientSession, server: served.Served) -> dict[str, Any]:
    async with http.get(server.operator_url + "/stats") as resp:
        data: dict[str, Any] = await resp.json()
        return data


async def survived(room: soak.Room, http: aiohttp.ClientSession, server: served.Served, interval: float) -> bool:
    """Media both ways over the next seconds, and both legs "connected" in a fresh /stats."""
    room.reset()
    await asyncio.sleep(max(3.0, 2 * interval))
    states = [p["media_state"] for r in (await stats(http, server))["rooms"] for p in r["participants"]]
    return room.flowing() and states == ["connected", "connected"]


def log_counts(server: served.Served) -> tuple[int, int]:
    text = server.log_text()
    return len(text.splitlines()), text.count("Traceback") + text.count("Exception in callback")


async def run(args: argparse.Namespace, server: served.Served) -> dict[str, Any]:
    http = aiohttp.ClientSession()
    room = soak.Room(0, server.links[0], soak.small_media())
    sprayer = Sprayer()
    out: dict[str, Any] = {"seed": args.seed}
    try:
        await room.start(http)
        await lg.wait_flowing(room.peers, 4, 60.0)
        targets = [s["address"] for s in served.udp_sockets(server.proc.pid)]
        out["server_udp_ports"] = [port for _, port in targets]
        lines0, tracebacks0 = log_counts(server)
        kernel0 = sum(s["kernel_drops"] for s in served.udp_sockets(server.proc.pid))
        # the datagram that used to end every call: alone first
        for target in targets:
            sprayer.sock.sendto(b"", target)
        out["survived_empty_datagram"] = await survived(room, http, server, args.stats_interval)
        legs = [leg_socket(p.pcs[-1]) for p in room.peers]
        rng = random.Random(args.seed)
        samples = [stun_valid_shape(rng) for _ in range(4)] + [rtp(rng)[:200] for _ in range(4)]
        sent: dict[str, int] = {}
        t0 = time.monotonic()
        # half from a stranger to every port, half from the legs' own sockets
        share = args.datagrams // (2 * len(legs))
        for leg in legs:
            stranger = datagrams(rng, share // len(targets), samples)
            await asyncio.wait_for(sprayer.spray(targets, stranger, batch=args.batch, counts=sent), args.max_seconds)
            spoofed = datagrams(rng, share, samples)
            await asyncio.wait_for(sprayer.spray([], spoofed, leg=leg, batch=args.batch, counts=sent), args.max_seconds)
        out["fuzz_seconds"] = round(time.monotonic() - t0, 1)
        out["datagrams_sent"] = sprayer.sent
        out["sent_by_shape"] = dict(sorted(sent.items()))
        await asyncio.sleep(2 * args.stats_interval + 0.5)  # the next /stats snapshot
        out["survived_fuzz"] = await survived(room, http, server, args.stats_interval)
        out["drops_by_kind"] = (await stats(http, server))["udp_dropped"]
        out["kernel_drops"] = sum(s["kernel_drops"] for s in served.udp_sockets(server.proc.pid)) - kernel0
        lines1, tracebacks1 = log_counts(server)
        out["server_log_lines_added"] = lines1 - lines0
        out["server_log_added"] = [line[:200] for line in server.log_text().splitlines()[lines0:lines0 + 20]]
        out["tracebacks"] = tracebacks1 - tracebacks0
        out["sample"] = server.sample()
    finally:
        sprayer.close()
        await room.close()
        await http.close()
    return out


def hot_path_cost(n: int = 20_000, rounds: int = 7) -> dict[str, float]:
    """µs per admitted RTP datagram: the guard, and aioice's STUN parse attempt it saves (baseline).

    Interleaved rounds, best of each: the machine is shared, the minimum is the cost.
    """
    from aioice import stun

    from sfu.udp_guard import UdpGuard

    guard = UdpGuard()
    packet = bytes([0x90, 96, 1, 2]) + bytes(8) + b"\xbe\xde\x00\x02" + bytes(8) + bytes(1000)

    def parse() -> None:
        try:
            stun.parse_message(packet)
        except ValueError:
            pass

    best = {"guard": float("inf"), "parse": float("inf")}
    for _ in range(rounds):
        for name, step in (("guard", lambda: guard.admit(packet, lambda: True)), ("parse", parse)):
            t0 = time.perf_counter()
            for _ in range(n):
                step()
            best[name] = min(best[name], 1e6 * (time.perf_counter() - t0) / n)
    return {"guard_us": round(best["guard"], 2), "aioice_stun_attempt_us": round(best["parse"], 2),
            "ratio": round(best["guard"] / best["parse"], 2)}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datagrams", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=17)
    p.add_argument("--batch", type=int, default=40, help="datagrams between two 2 ms pauses")
    p.add_argument("--max-seconds", type=float, default=300.0, help="bound on each spraying phase")
    p.add_argument("--stats-interval", type=float, default=0.5)
    args = p.parse_args()
    IcePolicy(addresses=["127.0.0.1"], port_min=PEER_PORTS[0], port_max=PEER_PORTS[1]).install()
    with tempfile.TemporaryDirectory(prefix="udp-fuzz-") as tmp:
        server = served.start(Path(tmp), 1, SERVER_PORTS, f"[stats]\ninterval = {args.stats_interval}\n")
        try:
            result = asyncio.run(asyncio.wait_for(run(args, server), 4 * args.max_seconds + 120))
            result["error"] = server.error()
        finally:
            server.stop()
    result["hot_path"] = hot_path_cost()
    print(json.dumps(result), flush=True)
    ok = result["tracebacks"] == 0 and result["survived_empty_datagram"] and result["survived_fuzz"]
    print(f"{result['datagrams_sent']} datagrams in {result['fuzz_seconds']} s; dropped by the guard "
          f"{sum(result['drops_by_kind'].values())} {result['drops_by_kind']}; kernel drops {result['kernel_drops']}; "
          f"tracebacks {result['tracebacks']} (must be 0); server log +{result['server_log_lines_added']} lines; "
          f"call survived: empty datagram {result['survived_empty_datagram']}, fuzz {result['survived_fuzz']}"
          f" -> {'OK' if ok else 'FAIL'}", flush=True)
    cost = result["hot_path"]
    print(f"per admitted RTP datagram: guard {cost['guard_us']} µs vs aioice's STUN parse attempt it replaces "
          f"{cost['aioice_stun_attempt_us']} µs (ratio {cost['ratio']})", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
