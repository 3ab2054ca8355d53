"""WebSocket fuzz, long run: 100,000+ seeded frames on both sides' sockets of a real `teleconsult serve`.

The frames come from tests/protocol_fuzz.py (built from docs/protocol.md's client
message tables: well-formed, mutated and junk frames).  Prints the frames sent, the
error replies by code, the sockets the server closed, the ill-formed replies, and from
the server's own log the tracebacks, the one-line failures (`failed: E...`) and the
5xx access lines: tracebacks, failures and 5xx must all be 0.  Bounded in frames and
time; stops the server it started, by its PID.

    .venv/bin/python benchmarks/ws_fuzz.py [--frames 100000] [--seed 1] [--max-seconds 900]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from call_cpu import start_demo_server  # noqa: E402
from procs import stop  # noqa: E402
from helpers import protocol_fuzz as fuzz  # noqa: E402

MAX_MESSAGE_BYTES = 262144  # the default [limits] max_message_bytes


async def run(links: list[str], frames: int, seed: int, max_seconds: float) -> tuple[fuzz.FuzzCounts, float]:
    messages, codes = fuzz.client_messages(), fuzz.error_codes()
    per_side = frames // len(links)
    started = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(*(
        fuzz.fuzz_link(link, fuzz.MessageGenerator(seed + i, messages, MAX_MESSAGE_BYTES), per_side, codes)
        for i, link in enumerate(links))), max_seconds)
    total = fuzz.FuzzCounts()
    for counts in results:
        total.add(counts)
    return total, time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames in all, split between both sides")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ws-fuzz-"))
    log = tmp / "server.log"
    proc = None
    try:
        proc, base, demo = start_demo_server(tmp, log, log_level="INFO")
        total, seconds = asyncio.run(run([demo["practitioner_link"], demo["patient_link"]], args.frames, args.seed,
                                         args.max_seconds))
        alive = proc.poll() is None
    finally:
        stop(proc)
    text = log.read_text(errors="replace")
    tracebacks = text.count("Traceback (most recent call last)")
    failures = len(re.findall(r" failed: E[0-9a-f]{8} ", text))
    statuses = [int(s) for s in re.findall(r"aiohttp\.access: \S+ \S+ \S+ (\d{3}) ", text)]
    server_errors = sum(1 for s in statuses if s >= 500)
    print(f"frames sent           : {total.sent} in {seconds:.1f} s ({total.sent / seconds:.0f}/s), seed {args.seed}")
    print(f"frames back           : {total.replies}")
    print(f"error replies         : {sum(total.errors.values())} "
          + ", ".join(f"{code} {n}" for code, n in total.errors.most_common()))
    print(f"sockets closed        : {total.closes}")
    print(f"ill-formed replies    : {len(total.ill_formed)} (must be 0) {total.ill_formed[:3]}")
    print(f"internal errors       : {total.errors['internal']} (must be 0)")
    print(f"tracebacks in the log : {tracebacks} (must be 0)")
    print(f"'failed: E' log lines : {failures} (must be 0)")
    print(f"HTTP 5xx              : {server_errors} of {len(statuses)} access lines (must be 0)")
    print(f"server still up       : {alive}")
    shutil.rmtree(tmp, ignore_errors=True)
    bad = total.ill_formed or total.errors["internal"] or tracebacks or failures or server_errors or not alive
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
