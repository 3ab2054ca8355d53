"""Two nodes against one: N rooms spread over two nodes, the same N rooms on one (issue 15 item 7).

Starts Debian's PostgreSQL and redis-server (tests/helpers/databases.py) and two
`teleconsult serve` nodes sharing them and one documents folder, each with its own
HTTP port and UDP range, then, with the same load as `sfu_compare.py` (loadgen.py,
pre-encoded VP8 + Opus per peer, raw SRTP sockets):

1. **one node**: the N rooms' peers all on node A (node B up, idle);
2. **two nodes**: room r's peers on node A if r is even, else on node B (the node
   where a consultation's first socket lands owns it);

and prints each node's CPU over the same window, the total, and the ratio
two nodes / one node.  Then the **signaling cost of the owner routing**: a patient
whose page request lands on the node that does not own the consultation gets a
307 to the owner's page and opens its socket there (docs/operations.md); the
time from the page request to the socket's `welcome`, landing on the owner or
on the other node, p50 / p95 over `--joins` joins each, and the difference.

The box has 2 cores: both nodes share core 0, the generator has core 1 (the CPU
figures are per process, so sharing a core does not change what is compared).
Run as root inside a loopback-only namespace::

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/two_nodes.py --rooms 16'

Bounded: every wait has a timeout; every process started is stopped by PID.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(HERE))
from helpers.databases import PostgresServer, RedisServer  # noqa: E402
from procs import stop, wait_http  # noqa: E402
from served import free_port  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python")
TELECONSULT = str(ROOT / ".venv" / "bin" / "teleconsult")
SERVER_CORE, GEN_CORE = "0", 1


class Node:
    """One `teleconsult serve` process with its own config, sharing the database, Redis and documents."""

    def __init__(self, tmp: Path, name: str, udp: tuple[int, int], database_url: str, redis_url: str) -> None:
        self.name = name
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.config = tmp / f"{name}.toml"
        shared = tmp / "shared"
        self.config.write_text(
            f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "{self.base_url}"\n'
            f'[storage]\ndata_dir = "{tmp / name}"\ndocuments_dir = "{shared / "documents"}"\n'
            f'whiteboard_dir = "{shared / "whiteboard"}"\nmin_free_mb = 0\n'
            f'[database]\nurl = "{database_url}"\n'
            f'[cluster]\nredis_url = "{redis_url}"\nnode_id = "{name}"\nheartbeat_seconds = 1.0\n'
            f'node_ttl_seconds = 3.0\n'
            f'[ice]\nhost_addresses = ["127.0.0.1"]\nport_min = {udp[0]}\nport_max = {udp[1]}\n'
            f'[operator]\nport = {free_port()}\n')
        self.log = tmp / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, TELECONSULT, "serve", "--config",
                                          str(self.config)], stdout=out, stderr=subprocess.STDOUT)
        wait_http(self.base_url + "/healthz", self.proc, timeout=60, log=self.log)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def demo(self) -> dict[str, Any]:
        """A new practitioner, patient and consultation starting now: its links (on this node's URL)."""
        done = subprocess.run([TELECONSULT, "--log-level", "WARNING", "demo", "--json", "--config", str(self.config)],
                              capture_output=True, text=True, check=True, timeout=60)
        links: dict[str, Any] = json.loads(done.stdout)
        return links


def on(node: Node, link: dict[str, Any], other: Node) -> dict[str, Any]:
    """The same links, pointing at `node` (they were minted with `other`'s URL)."""
    return {k: v.replace(other.base_url, node.base_url) if isinstance(v, str) else v for k, v in link.items()}


def load(args: argparse.Namespace, tmp: Path, label: str, links: list[dict[str, Any]], a: Node, b: Node) -> dict[str, Any]:
    path = tmp / f"links-{label}.json"
    path.write_text(json.dumps(links))
    cmd = [PY, str(HERE / "loadgen.py"), "--mode", "ours", "--rooms", str(len(links)), "--links", str(path),
           "--server-pid", str(a.pid), "--other-pid", str(b.pid), "--duration", str(args.duration),
           "--warmup", str(args.warmup), "--core", str(GEN_CORE), "--media-cache", str(tmp / "media.pkl")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.warmup + args.duration + 180)
    if done.returncode != 0:
        raise RuntimeError(f"loadgen failed ({label}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    secs = result["seconds"]
    result["node_cpu_pct"] = {a.name: round(100 * result["server_cpu_s"] / secs, 1),
                              b.name: round(100 * result["other_cpu_s"][str(b.pid)] / secs, 1)}
    result["total_cpu_pct"] = round(sum(result["node_cpu_pct"].values()), 1)
    return result


async def join_ms(http: aiohttp.ClientSession, patient_link: str) -> float:
    """From the patient's page request (following a 307) to `welcome` on the socket of the page's node."""
    start = time.perf_counter()
    async with http.get(patient_link, allow_redirects=True) as page:
        assert page.status == 200, page.status
        final = str(page.url)
    async with http.ws_connect(final.replace("http", "ws", 1) + "/ws") as ws:
        welcome = json.loads((await ws.receive(timeout=10)).data)
        elapsed = (time.perf_counter() - start) * 1000
        assert welcome["type"] == "welcome", welcome
    return elapsed


async def signaling(args: argparse.Namespace, a: Node, b: Node) -> dict[str, Any]:
    owned = [(a, b, a.demo()), (b, a, a.demo())]  # one consultation owned by each node
    direct: list[float] = []
    routed: list[float] = []
    async with aiohttp.ClientSession() as http:
        doctors = []
        for owner, _, link in owned:  # the practitioner's socket on the owner claims it
            ws = await http.ws_connect(on(owner, link, a)["practitioner_link"].replace("http", "ws", 1) + "/ws")
            first = json.loads((await ws.receive(timeout=10)).data)
            assert first["type"] == "welcome", first
            doctors.append(ws)
        try:
            for n in range(args.joins):
                owner, other, link = owned[n % 2]
                direct.append(await join_ms(http, on(owner, link, a)["patient_link"]))
                routed.append(await join_ms(http, on(other, link, a)["patient_link"]))
        finally:
            for ws in doctors:
                await ws.close()

    def pct(values: list[float], q: int) -> float:
        return round(statistics.quantiles(values, n=100, method="inclusive")[q - 1], 1)

    return {"joins": args.joins, "direct_p50_ms": pct(direct, 50), "direct_p95_ms": pct(direct, 95),
            "routed_p50_ms": pct(routed, 50), "routed_p95_ms": pct(routed, 95),
            "added_p50_ms": round(pct(routed, 50) - pct(direct, 50), 1),
            "added_p95_ms": round(pct(routed, 95) - pct(direct, 95), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rooms", type=int, default=16)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=4.0)
    parser.add_argument("--joins", type=int, default=40, help="patient joins per kind for the signaling figures")
    parser.add_argument("--out", default="", help="also write the figures as JSON")
    args = parser.parse_args()
    os.sched_setaffinity(0, {GEN_CORE})  # this script and `teleconsult demo` stay off the nodes' core
    postgres, redis = PostgresServer(), RedisServer()
    nodes: list[Node] = []
    with tempfile.TemporaryDirectory(prefix="two-nodes-") as name:
        tmp = Path(name)
        os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user
        try:
            postgres.start()
            redis.start()
            database = postgres.new_schema()
            a = Node(tmp, "node-a", (41000, 41499), database, redis.url)
            b = Node(tmp, "node-b", (41500, 41999), database, redis.url)
            nodes += [a, b]
            a.start()
            b.start()
            print(f"nodes up: {a.name} {a.base_url}, {b.name} {b.base_url}; scheduling {2 * args.rooms} consultations",
                  flush=True)
            minted = [a.demo() for _ in range(2 * args.rooms)]
            one = load(args, tmp, "one", minted[:args.rooms], a, b)
            print(f"one node : {json.dumps(one['node_cpu_pct'])} fwd {one['fwd_pkt_s']} pkt/s, loss {one['loss_pct']} %",
                  flush=True)
            spread = [on(a if r % 2 == 0 else b, link, a) for r, link in enumerate(minted[args.rooms:])]
            two = load(args, tmp, "two", spread, a, b)
            print(f"two nodes: {json.dumps(two['node_cpu_pct'])} fwd {two['fwd_pkt_s']} pkt/s, loss {two['loss_pct']} %",
                  flush=True)
            routing = asyncio.run(signaling(args, a, b))
        finally:
            for node in nodes:
                stop(node.proc)
            redis.stop()
            postgres.stop()
    ratio = two["total_cpu_pct"] / one["total_cpu_pct"] if one["total_cpu_pct"] else float("nan")
    per_packet = [round(1e6 * r["total_cpu_pct"] / 100 / r["fwd_pkt_s"], 1) for r in (one, two)]
    print(f"\n{args.rooms} 1:1 rooms, window {args.duration:.0f} s after {args.warmup:.0f} s warm-up "
          f"(node CPU % of a core, same window)")
    print("| layout | node-a CPU % | node-b CPU % | total CPU % | fwd pkt/s | µs CPU / fwd pkt | loss % |")
    print("|---|---|---|---|---|---|---|")
    for label, r, us in (("one node", one, per_packet[0]), ("two nodes", two, per_packet[1])):
        cpu = r["node_cpu_pct"]
        print(f"| {label} | {cpu['node-a']} | {cpu['node-b']} | {r['total_cpu_pct']} | {r['fwd_pkt_s']} | {us} "
              f"| {r['loss_pct']} |")
    print(f"ratio of total CPU, two nodes / one node: {ratio:.2f}x")
    print(f"patient join, page request to welcome ({routing['joins']} joins each): on the owner "
          f"p50 {routing['direct_p50_ms']} / p95 {routing['direct_p95_ms']} ms; on the other node (307 to the owner) "
          f"p50 {routing['routed_p50_ms']} / p95 {routing['routed_p95_ms']} ms; added "
          f"p50 {routing['added_p50_ms']} / p95 {routing['added_p95_ms']} ms")
    if args.out:
        Path(args.out).write_text(json.dumps({"one": one, "two": two, "ratio": ratio, "signaling": routing}, indent=1))


if __name__ == "__main__":
    main()
