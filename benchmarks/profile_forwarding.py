"""Where the server's time per forwarded packet goes: our SFU under the raw load generator, profiled.

Runs the same load twice against a fresh server pinned to core 0 (the load
generator on core 1, pre-encoded VP8 + Opus, `loadgen.py --engine raw`):
first plain, then under cProfile, which runs only during the load generator's
measurement window (profiled_serve.py; no start-up, set-up or shutdown in the
profile). Prints the server's CPU per forwarded packet in both runs (their
ratio is the profiler's own cost: read the profile's figures with it), then
the functions with the most own time, each as calls and µs of own time per
forwarded packet of the window, and its share of all the server's own time
outside the event loop's wait. For issue 14: what a fast path has left to
cut. All traffic stays on 127.0.0.1; every process is stopped by PID.

    .venv/bin/python benchmarks/profile_forwarding.py --rooms 8 --duration 20
"""

from __future__ import annotations

import argparse
import json
import pstats
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from procs import stop, wait_http  # noqa: E402
from served import demo_links, write_config  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TELECONSULT = str(ROOT / ".venv" / "bin" / "teleconsult")
SERVER_CORE, GEN_CORE = 0, 1
# the functions that hold the loop's idle wait (uvloop's run_forever is C: cProfile charges its wait there)
IDLE = ("run_app", "run_forever", "run_until_complete", "select", "_run_once")


def run(tmp: Path, rooms: int, duration: float, warmup: float, profile: Path | None) -> dict[str, Any]:
    """One load run against a fresh server; under cProfile (written to `profile`) if given."""
    tmp.mkdir(parents=True)
    cfg, port = write_config(tmp, (40000, 40999), '[media]\nevent_loop = "uvloop"\n')
    (tmp / "links.json").write_text(json.dumps(demo_links(cfg, rooms)))
    server = [PY, str(HERE / "profiled_serve.py"), str(profile)] if profile else [TELECONSULT]
    log = tmp / "server.log"
    with log.open("ab") as f:
        proc = subprocess.Popen(["taskset", "-c", str(SERVER_CORE), *server, "serve", "--config", str(cfg)],
                                stdout=f, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc, log=log)
        out = subprocess.run([PY, str(HERE / "loadgen.py"), "--mode", "ours", "--rooms", str(rooms),
                              "--links", str(tmp / "links.json"), "--server-pid", str(proc.pid), "--ip", "127.0.0.1",
                              "--duration", str(duration), "--warmup", str(warmup), "--core", str(GEN_CORE),
                              *(["--profile-window"] if profile else [])],
                             capture_output=True, text=True, timeout=duration + warmup + 120)
        if out.returncode != 0:
            raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(out.stdout)
    finally:
        stop(proc)
    return result


def top(profile: Path, packets: int, count: int) -> list[tuple[str, float, float, float]]:
    """(function, calls per packet, own µs per packet, share of own time) of the `count` costliest."""
    stats: dict[Any, Any] = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    rows = [(f"{Path(file).name}:{line}({name})" if file != "~" else name, calls, own)
            for (file, line, name), (_, calls, own, _, _) in stats.items() if name not in IDLE]
    total = sum(own for _, _, own in rows) or 1.0
    rows.sort(key=lambda r: -r[2])
    return [(name, calls / packets, 1e6 * own / packets, own / total) for name, calls, own in rows[:count]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", type=int, default=8)
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=4.0)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--keep", type=Path, help="also copy the profile here (for pstats or snakeviz)")
    p.add_argument("--plain", action="store_true", help="the plain run only: CPU and memory, no profile")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="profile-forwarding-") as d:
        tmp = Path(d)
        plain = run(tmp / "plain", args.rooms, args.duration, args.warmup, None)
        print(f"plain: {plain['us_per_pkt']} µs of server CPU per forwarded packet, {plain['fwd_pkt_s']} packets/s, "
              f"{plain['server_cpu_pct']} % of a core, RSS {plain['rss_idle_mb']} MB idle, {plain['rss_end_mb']} MB "
              f"at the end: {plain['rss_per_participant_mb']} MB per participant; loss {plain['loss_pct']} %; "
              f"load generator {plain['gen_cpu_pct']} % of its core "
              f"({plain['gen_system_pct']} % in the kernel)")
        if args.plain:
            return
        profile = tmp / "server.prof"
        profiled = run(tmp / "profiled", args.rooms, args.duration, args.warmup, profile)
        if not profile.exists():
            raise SystemExit("the profiled server wrote no profile (did it get SIGUSR2?)")
        if args.keep:
            args.keep.write_bytes(profile.read_bytes())
        packets = max(1, int(profiled["fwd_pkts"]))  # the profile covers the window and nothing else
        print(f"# profile_forwarding: {args.rooms} rooms, {args.duration:.0f} s windows, raw load generator")
        print(f"server CPU per forwarded packet: plain {plain['us_per_pkt']} µs, under cProfile "
              f"{profiled['us_per_pkt']} µs (ratio {profiled['us_per_pkt'] / plain['us_per_pkt']:.2f}: the "
              "profiler's own cost); loss plain / profiled "
              f"{plain['loss_pct']} / {profiled['loss_pct']} %")
        print(f"\n| function | calls per packet | own µs per packet (profiled) | share |\n|---|---|---|---|")
        for name, calls, us, share in top(profile, packets, args.top):
            print(f"| {name} | {calls:.2f} | {us:.2f} | {100 * share:.1f} % |")


if __name__ == "__main__":
    main()
