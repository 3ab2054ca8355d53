"""Same load against: direct peer-to-peer, our SFU, aiortc's MediaRelay, Janus videoroom.

For every server and room count (1:1 rooms, default 1, 4, 8) it starts a fresh server
pinned to core 0 (``taskset -c 0``), runs ``loadgen.py`` pinned to core 1 (pre-encoded
VP8 640x480 30 fps ~1 Mbit/s + Opus per peer, received without decoding), stops the
server by PID, and finally prints ONE table with the ratios to the targets.

Everything runs inside a private network namespace (made here, deleted afterwards)
whose ``lo`` is up and whose veth carries 127.0.0.2: Janus never uses a loopback
interface, so all servers and peers use 127.0.0.2 for media (the kernel still routes
it through loopback); HTTP/WebSocket signalling is on 127.0.0.1.  Run as root from
the repository root::

    .venv/bin/python benchmarks/sfu_compare.py --rooms 1,4,8 --duration 20 --warmup 4

Bounded: each load run has its own timeout, the whole run an overall guard
(`--timeout`); every process started is stopped by PID in ``finally``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import janus_harness as jh  # noqa: E402
from procs import stop, wait_http  # noqa: E402
from report import print_report  # noqa: E402
from served import demo_links, free_port, write_config  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TELECONSULT = str(ROOT / ".venv" / "bin" / "teleconsult")
NETNS = "sfubench"
ICE_IP = "127.0.0.2"
SERVER_CORE, GEN_CORE = 0, 1
NICE: list[str] = []  # e.g. ["nice", "-n", "-15"], set from --nice: same priority for every server and the generator


# ---------------------------------------------------------------- outer: the namespace

def outer(args: argparse.Namespace, argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("sfu_compare: must run as root (it makes a network namespace)", file=sys.stderr)
        return 2
    if subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split().count(args.netns):
        print(f"sfu_compare: namespace {args.netns} already exists; delete it or pass --netns", file=sys.stderr)
        return 2
    run = lambda *c: subprocess.run(list(c), check=True)  # noqa: E731
    run("ip", "netns", "add", args.netns)
    proc: subprocess.Popen[bytes] | None = None
    try:
        run("ip", "netns", "exec", args.netns, "sh", "-c",
            "ip link set lo up; ip link add v0 type veth peer name v1; ip link set v0 up; ip link set v1 up; "
            f"ip addr add {ICE_IP}/32 dev v0")
        env = dict(os.environ, SFU_COMPARE_INNER=args.netns)
        proc = subprocess.Popen(["ip", "netns", "exec", args.netns, PY, str(Path(__file__).resolve()), *argv], env=env)
        try:
            return proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            print(f"sfu_compare: overall timeout {args.timeout} s: stopping", file=sys.stderr)
            proc.send_signal(signal.SIGTERM)  # the inner process stops its children in finally
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            return 3
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["ip", "netns", "del", args.netns], check=False)


# ---------------------------------------------------------------- inner: servers

def start_ours(tmp: Path, rooms: int, log: Path, event_loop: str = "uvloop",
               teleconsult: str = TELECONSULT) -> tuple[subprocess.Popen[bytes], list[str]]:
    # one process on one core (workers = 1), as every earlier figure (workers_cpu.py: workers)
    cfg, port = write_config(tmp, (40000, 40999), f'[media]\nevent_loop = "{event_loop}"\n',
                             ice_ip=ICE_IP)
    (tmp / "links.json").write_text(json.dumps(demo_links(cfg, rooms)))
    with log.open("ab") as f:
        proc = subprocess.Popen([*NICE, "taskset", "-c", str(SERVER_CORE), teleconsult, "serve", "--config", str(cfg)],
                                stdout=f, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, ["--links", str(tmp / "links.json")]


def start_relay(log: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    port = free_port()
    with log.open("ab") as f:
        proc = subprocess.Popen([*NICE, "taskset", "-c", str(SERVER_CORE), PY, str(HERE / "relay_baseline.py"),
                                 "--port", str(port), "--ip", ICE_IP, "--lifetime", "600"],
                                stdout=f, stderr=subprocess.STDOUT)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc)
    return proc, ["--url", f"http://127.0.0.1:{port}"]


def start_janus(conf: Path, log: Path) -> tuple[subprocess.Popen[bytes], list[str]]:
    proc = jh.start(conf, log, SERVER_CORE, NICE)
    jh.wait_ready(proc)
    return proc, []


def run_point(args: argparse.Namespace, server: str, rooms: int, tmp: Path, janus_conf: Path | None) -> dict[str, Any]:
    run_dir = Path(tempfile.mkdtemp(prefix=f"{server}-{rooms}-", dir=tmp))
    log = tmp / f"{server}-{rooms}.log"
    proc: subprocess.Popen[bytes] | None = None
    extra: list[str] = []
    try:
        base = server.partition(":")[0]
        if base in ("ours", "ours-asyncio"):
            proc, extra = start_ours(run_dir, rooms, log, "asyncio" if base == "ours-asyncio" else "uvloop")
        elif base == "ours-alt":  # the same code on another interpreter (its venv's `teleconsult` script)
            proc, extra = start_ours(run_dir, rooms, log, teleconsult=str(Path(args.alt_python).parent / "teleconsult"))
        elif base == "relay":
            proc, extra = start_relay(log)
        elif base == "janus":
            assert janus_conf is not None
            proc, extra = start_janus(janus_conf, log)
        if proc is not None:
            time.sleep(1.0)  # let the server settle before its idle RSS is read
            extra += ["--server-pid", str(proc.pid)]
        # "janus:aiortc": the same server, loaded by the aiortc engine (to compare the generators)
        base, _, engine = server.partition(":")
        mode = "ours" if base in ("ours-asyncio", "ours-alt") else base
        cmd = [*NICE, PY, str(HERE / "loadgen.py"), "--mode", mode, "--rooms", str(rooms), "--engine", engine or args.engine,
               "--duration", str(args.duration), "--warmup", str(args.warmup), "--ip", ICE_IP,
               "--core", str(GEN_CORE), "--media-cache", str(tmp / "media.pkl"), *extra]
        limit = args.warmup + args.duration + 120 + 5 * rooms
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed ({out.returncode}): {out.stderr.strip().splitlines()[-1][-600:]}")
        result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        result["mode"] = server
        if proc is not None and proc.poll() is not None:
            result["error"] = f"server exited with code {proc.returncode} during the run"
        return result
    except Exception as exc:  # one failed point must not lose the others
        return {"mode": server, "rooms": rooms, "error": f"{type(exc).__name__}: {exc}"[:1500]}
    finally:
        stop(proc)


def _busy() -> tuple[int, int]:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return sum(v) - v[3] - v[4], sum(v)


def wait_quiet(max_wait: float, pct: float) -> float:
    """Wait (at most `max_wait` s) for a second in which the box is at most `pct`% busy; returns the last %."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, t0 = _busy()
        time.sleep(1.0)
        b1, t1 = _busy()
        busy = 100.0 * (b1 - b0) / max(1, t1 - t0)
        if busy <= pct or time.monotonic() >= deadline:
            return busy


def median_run(rs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from repeated runs: the median of every numeric figure (failed runs left out)."""
    ok = [r for r in rs if "error" not in r]
    if not ok:
        return rs[-1]
    out = dict(ok[0])
    for key, value in ok[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key != "rooms":
            vals = sorted(r[key] for r in ok if isinstance(r.get(key), (int, float)))
            out[key] = vals[len(vals) // 2] if len(vals) % 2 else (vals[len(vals) // 2 - 1] + vals[len(vals) // 2]) / 2
    for key in ("core_busy_pct",):
        if all(key in r for r in ok):
            out[key] = {c: sorted(r[key][c] for r in ok)[len(ok) // 2] for c in ok[0][key]}
    out["runs_ok"], out["runs"] = len(ok), len(rs)
    if len(ok) > 1 and all(r.get("latency_p95_ms") is not None for r in ok):
        out["latency_p95_runs"] = [r["latency_p95_ms"] for r in ok]
    return out


def git_state() -> str:
    """The commit measured, and whether sfu/ or signaling/ had uncommitted changes."""
    def git(*a: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True).stdout.strip()
    dirty = git("status", "--porcelain", "--", "sfu", "signaling")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in sfu/ or signaling/" if dirty else "")


def inner(args: argparse.Namespace) -> int:
    if args.nice:
        NICE[:] = ["nice", "-n", str(args.nice)]
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    os.sched_setaffinity(0, {GEN_CORE})  # this script and teleconsult demo stay off the server's core
    tmp = Path(tempfile.mkdtemp(prefix="sfu-compare-"))
    rooms = [int(x) for x in args.rooms.split(",")]
    relay_rooms = [int(x) for x in args.relay_rooms.split(",")] if args.relay_rooms else rooms
    servers = args.servers.split(",")
    started = dt.datetime.now(dt.timezone.utc)
    results: list[dict[str, Any]] = []
    try:
        # encode the media loop once, shared by every run through a cache file
        subprocess.run([PY, "-c", f"import sys; sys.path.insert(0, {str(HERE)!r}); import bench_media as b; "
                        f"b.encode_media(cache=__import__('pathlib').Path({str(tmp / 'media.pkl')!r}))"],
                       check=True, timeout=120)
        janus_conf = jh.prepare_config(tmp, ICE_IP) if any(s.startswith("janus") for s in servers) else None
        # interleaved (room count, then server, then repeat) so that every server sees the same
        # background load on this shared box; each point waits for a quiet machine first
        runs: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for rep in range(args.repeat):
            for n in sorted(set(rooms) | set(relay_rooms)):
                for server in servers:
                    if n not in (relay_rooms if server == "relay" else rooms):
                        continue
                    if server == "relay" and rep >= args.relay_repeat:
                        continue  # the relay saturates its core: one run tells the story
                    quiet = wait_quiet(args.quiet_wait, args.quiet_pct)
                    print(f"[{time.strftime('%H:%M:%S')}] {server}, {n} room(s), run {rep + 1}/{args.repeat} "
                          f"(background before: {quiet:.0f}% of the 2 cores) ...", flush=True)
                    r = run_point(args, server, n, tmp, janus_conf)
                    r["background_before_pct"] = round(quiet, 1)
                    r["loadavg_after"] = os.getloadavg()
                    runs.setdefault((server, n), []).append(r)
                    print("   " + json.dumps(r), flush=True)
        order = {s: i for i, s in enumerate(servers)}
        results = [median_run(runs[k]) for k in sorted(runs, key=lambda k: (order[k[0]], k[1]))]
        meta = {
            "date": started.strftime("%Y-%m-%d %H:%M UTC"), "duration": args.duration, "warmup": args.warmup,
            "machine": f"{os.cpu_count()} vCPU, {platform.processor() or platform.machine()}, {platform.platform()}",
            "python": platform.python_version(), "nice": args.nice, "git": git_state(), "repeat": args.repeat,
        }
        if args.out:
            raw = [r for k in runs for r in runs[k]]
            Path(args.out).write_text(json.dumps({"meta": meta, "results": results, "runs": raw}, indent=1))
        print_report(results, meta, args.max_gen_cpu, [r for k in runs for r in runs[k]])
        return 0
    except KeyboardInterrupt:
        print("sfu_compare: interrupted", file=sys.stderr)
        return 130
    finally:
        if args.keep_logs:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", default="1,4,8", help="room counts, comma-separated")
    p.add_argument("--relay-rooms", default="", help="room counts for MediaRelay (default: --rooms)")
    p.add_argument("--servers", default="direct,ours,relay,janus",
                   help="among direct, ours, ours-asyncio (our server on asyncio's loop), ours-alt (on --alt-python), "
                        "relay, janus; "
                        "NAME:aiortc loads that server with the aiortc engine whatever --engine says")
    p.add_argument("--engine", choices=["raw", "aiortc"], default="raw",
                   help="load generator: raw SRTP sockets (default; 32 rooms fit its core) or aiortc's RTP stack")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--max-gen-cpu", type=float, default=75.0, help="generator CPU %% above which a row is invalid")
    p.add_argument("--timeout", type=float, default=0, help="overall guard in s (default: from the plan)")
    p.add_argument("--nice", type=int, default=-15,
                   help="niceness of every server and the generator (0: none); shields them from other load on the box")
    p.add_argument("--repeat", type=int, default=1, help="runs per point; the table shows medians")
    p.add_argument("--relay-repeat", type=int, default=1, help="runs per MediaRelay point (at most --repeat)")
    p.add_argument("--quiet-wait", type=float, default=30.0,
                   help="before each point, wait up to this many s for the box to be quiet (shared machines)")
    p.add_argument("--quiet-pct", type=float, default=25.0, help="'quiet': at most this %% of both cores busy")
    p.add_argument("--alt-python", default="",
                   help="server ours-alt: our server run by this interpreter's venv (its bin/teleconsult), e.g. one "
                        "built with PGO and LTO, against ours on the project's .venv")
    p.add_argument("--netns", default=NETNS)
    p.add_argument("--out", default="", help="also write every figure as JSON")
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--report", default="", help="only print the table again from an --out JSON file")
    args = p.parse_args()
    if args.report:
        data = json.loads(Path(args.report).read_text())
        print_report(data["results"], data["meta"], args.max_gen_cpu, data.get("runs"))
        return 0
    if "ours-alt" in args.servers.split(",") and not (Path(args.alt_python).parent / "teleconsult").exists():
        p.error("server ours-alt needs --alt-python: a venv's python with teleconsult installed beside it")
    if os.environ.get("SFU_COMPARE_INNER"):
        return inner(args)
    if not args.timeout:
        n_points = len(args.servers.split(",")) * len(args.rooms.split(",")) * args.repeat
        args.timeout = 120 + n_points * (args.duration + args.warmup + 75 + args.quiet_wait)
    return outer(args, sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
