"""Each media worker's CPU with [sfu] workers = N: N processes, R 1:1 rooms of pre-encoded peers.

The pool is `sfu.remote.WorkerPool` (what the server runs with workers > 1), rooms
placed least-loaded; the peers are loadgen's (pre-encoded VP8 ~1 Mbit/s + Opus,
nothing decoded), in this process.  After every stream flows and `--warmup` s, it
measures `--duration` s and prints one JSON object: each worker's PID, rooms and
CPU % (from /proc/PID/stat), the generator's own CPU %, packets received by the
peers, and, as the baseline measured in the same run, the mean worker CPU per room
against the per-room figure of the worker with the most rooms (the ratio shows
whether the load split evenly).

    nice -n 19 unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/workers_cpu.py --workers 2 --rooms 4'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_media as bm  # noqa: E402
import loadgen as lg  # noqa: E402
from aiortc import RTCSessionDescription  # noqa: E402

from sfu import IcePolicy, SfuOptions  # noqa: E402
from sfu.remote import RemoteRoom, WorkerPool  # noqa: E402


async def negotiate(room: RemoteRoom, peer: lg.Peer, role: str) -> None:
    participant = room.add_participant(peer.name, role)
    pc = peer.product_pc()
    answer = await participant.handle_offer(await peer.offer(pc))
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    media = bm.encode_media()
    IcePolicy(["127.0.0.1"], 30000, 39999).install()  # the peers' own candidates (aioice skips loopback)
    pool = WorkerPool(SfuOptions(), IcePolicy(["127.0.0.1"], 44000, 44999), args.workers)
    await pool.start()
    peers: list[lg.Peer] = []
    try:
        rooms = [pool.room(f"bench-{i}") for i in range(args.rooms)]
        for i, room in enumerate(rooms):
            a, b = lg.Peer(i, 0, media), lg.Peer(i, 1, media)
            a.other, b.other = b, a
            peers += [a, b]
            await asyncio.gather(negotiate(room, a, "practitioner"), negotiate(room, b, "patient"))
        pcs = [pc for p in peers for pc in p.pcs]
        for _ in range(300):  # bounded: 30 s for every stream to flow
            if all(any(m.frames > 0 for m in p.meters if m.kind == "video") for p in peers):
                break
            await asyncio.sleep(0.1)
        else:
            raise TimeoutError("media not flowing after 30 s")
        await asyncio.sleep(args.warmup)
        pids = {w.index: w.pid for w in pool.workers}
        before = {i: bm.proc_cpu_s(pid) for i, pid in pids.items() if pid is not None}
        me_before, packets_before = bm.proc_cpu_s(os.getpid()), await lg.inbound(pcs)
        t0 = time.monotonic()
        await asyncio.sleep(args.duration)
        span = time.monotonic() - t0
        after = {i: bm.proc_cpu_s(pid) for i, pid in pids.items() if pid is not None}
        me_after, packets_after = bm.proc_cpu_s(os.getpid()), await lg.inbound(pcs)
        workers = []
        for w in pool.workers:
            pct = 100 * (after[w.index] - before[w.index]) / span
            workers.append({"worker": w.index, "pid": w.pid, "rooms": len(w.rooms), "cpu_pct": round(pct, 1),
                            "cpu_pct_per_room": round(pct / len(w.rooms), 2) if w.rooms else None})
        per_room = [w["cpu_pct_per_room"] for w in workers if w["cpu_pct_per_room"] is not None]
        busiest = max(workers, key=lambda w: w["rooms"])
        mean = sum(w["cpu_pct"] for w in workers) / max(1, args.rooms)
        return {
            "workers": workers,
            "rooms": args.rooms,
            "duration_s": round(span, 1),
            "generator_cpu_pct": round(100 * (me_after - me_before) / span, 1),
            "packets_received": {k: packets_after[k] - packets_before[k] for k in packets_after},
            "mean_cpu_pct_per_room": round(mean, 2),
            "ratio_mean_to_busiest_worker_per_room": (round(mean / busiest["cpu_pct_per_room"], 2)
                                                      if busiest["cpu_pct_per_room"] else None),
            "per_room_spread": [min(per_room), max(per_room)] if per_room else None,
        }
    finally:
        await asyncio.gather(*(p.close() for p in peers))
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=10.0)
    print(json.dumps(asyncio.run(run(parser.parse_args())), indent=1))


if __name__ == "__main__":
    main()
