"""Churn memory: the server's RSS per participant leaving and rejoining, early on and once settled.

A fast reproduction of the soak's growth (issue 17 item 9): one 1:1 room of
synthetic peers (soak.py's), one participant at a time closes its tab and a
new one joins, `--cycles` times, against a server child process (served.py,
SOAK_DIAG=1).  A heap report (heap_probe.py) is taken before the first
rejoin, half-way and at the end; printed: RSS, the brk heap's resident size,
free space inside it and live peer connections at each, the RSS per rejoin
in each half and the ratio of the second half to the first (the baseline).
A leak keeps the ratio near 1; a heap that settles takes it towards 0.

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/churn_memory.py'

Loopback only; run it in a network namespace as above.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadgen as lg  # noqa: E402
import served  # noqa: E402
import soak  # noqa: E402

from sfu.ice import IcePolicy  # noqa: E402


def report(server: served.Served) -> dict[str, Any]:
    """Ask the server for a heap_probe report (SOAK_DIAG=1) and add its RSS."""
    server.tasks_file.with_suffix(".diag").write_text("")
    for _ in range(60):  # the server looks every second
        time.sleep(0.25)
        inside = json.loads(server.tasks_file.read_text() or "{}")
        if "smaps_kb" in inside:
            return {"rss_mb": server.sample()["rss_mb"], "heap_mb": round(inside["smaps_kb"].get("[heap]", 0) / 1024, 1),
                    "heap_free_mb": inside["malloc"]["free_mb"], "peer_connections": inside["peer_connections"],
                    "threads": inside["threads"]}
    raise TimeoutError("the server gave no report")


async def churn(server: served.Served, cycles: int, pause: float) -> dict[str, Any]:
    http = aiohttp.ClientSession()
    room = soak.Room(0, server.links[0], soak.small_media())
    out: dict[str, Any] = {}
    half = cycles // 2
    try:
        await room.start(http)
        await lg.wait_flowing(room.peers, 4, 60.0)
        out["start"] = await asyncio.to_thread(report, server)
        for i in range(cycles):
            await asyncio.wait_for(room.rejoin(i % 2, http), 30)
            await asyncio.sleep(pause)
            if i + 1 == half:
                out["half"] = await asyncio.to_thread(report, server)
        await asyncio.sleep(3)  # the last closing connection's teardown
        out["end"] = await asyncio.to_thread(report, server)
    finally:
        await room.close()
        await http.close()
    out["first_half_kb_per_rejoin"] = round(1024 * (out["half"]["rss_mb"] - out["start"]["rss_mb"]) / half, 1)
    out["second_half_kb_per_rejoin"] = round(1024 * (out["end"]["rss_mb"] - out["half"]["rss_mb"]) / (cycles - half), 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cycles", type=int, default=40)
    p.add_argument("--pause", type=float, default=2.5, help="seconds of media after each rejoin")
    args = p.parse_args()
    if args.cycles < 4:
        p.error("--cycles must be at least 4")
    IcePolicy(addresses=["127.0.0.1"], port_min=soak.PEER_PORTS[0], port_max=soak.PEER_PORTS[1]).install()
    os.environ["SOAK_DIAG"] = "1"
    with tempfile.TemporaryDirectory(prefix="churn-memory-") as tmp:
        server = served.start(Path(tmp), 1, soak.SERVER_PORTS)
        try:
            result = asyncio.run(asyncio.wait_for(churn(server, args.cycles, args.pause),
                                                  120 + args.cycles * (args.pause + 30)))
        finally:
            server.stop()
    print(json.dumps(result), flush=True)
    first, second = result["first_half_kb_per_rejoin"], result["second_half_kb_per_rejoin"]
    ratio = f"{second / first:.2f}" if first > 0 else "n/a"
    print(f"RSS per rejoin: first {args.cycles // 2} rejoins {first} kB, next {args.cycles - args.cycles // 2} "
          f"{second} kB (ratio {ratio}); RSS {result['start']['rss_mb']} -> {result['half']['rss_mb']} -> "
          f"{result['end']['rss_mb']} MB", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
