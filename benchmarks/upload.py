"""Upload benchmark: a file shared in the chat, streamed to disk by a real `teleconsult serve`.

1. writes a temporary config.toml (HTTP on a free loopback port, data in a
   temporary folder), gets a demo consultation's links from `teleconsult demo --json`,
   starts `teleconsult serve` as a subprocess;
2. uploads `--mib` MiB (default 99) through the patient's link, the body generated
   on the fly (the client holds 1 MiB at a time), while it
   - samples the server's RSS (`/proc/PID/status` VmRSS) every 10 ms,
   - times `GET /healthz` every 20 ms: the event loop's responsiveness during the upload;
3. sends a file over the limit (`Content-Length` of 101 MiB) and times the 413;
4. checks the stored file's SHA-256 and that no temporary file is left.

Prints MiB/s, the server's RSS before and its peak during the upload (the body is
never held whole in memory: the growth stays a few MiB whatever the size), the
slowest /healthz answer, and the 413's delay.  Bounded in time; stops the server
it started, by its PID.

    .venv/bin/python benchmarks/upload.py [--mib 99]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from call_cpu import demo_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MIB = 1 << 20


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    """The peak RSS of a process, sampled every 10 ms until stopped."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.01):
            self.peak = max(self.peak, rss_kib(self.pid))


async def run(link: str, base: str, pid: int, mib: int, data_dir: Path) -> dict[str, float]:
    block = os.urandom(MIB)
    digest = hashlib.sha256()

    async def body() -> object:
        for i in range(mib):
            chunk = block[:-4] + i.to_bytes(4, "big")  # every MiB different
            digest.update(chunk)
            yield chunk

    slowest = 0.0
    uploading = True

    async def ping(session: aiohttp.ClientSession) -> None:
        nonlocal slowest
        while uploading:
            start = time.perf_counter()
            async with session.get(base + "/healthz") as r:
                await r.read()
            slowest = max(slowest, time.perf_counter() - start)
            await asyncio.sleep(0.02)

    before = rss_kib(pid)
    sampler = RssSampler(pid)
    sampler.start()
    async with aiohttp.ClientSession() as session:
        pinger = asyncio.create_task(ping(session))
        start = time.perf_counter()
        async with session.post(f"{link}/files?name=bench.bin", data=body(),
                                headers={"Content-Length": str(mib * MIB)}) as r:
            status, reply = r.status, await r.json()
        elapsed = time.perf_counter() - start
        uploading = False
        await pinger
        sampler.done.set()
        sampler.join()
        if status != 201:
            raise RuntimeError(f"upload answered {status}: {reply}")
        start = time.perf_counter()
        async with session.post(f"{link}/files?name=big.bin", data=b"",
                                headers={"Content-Length": str(101 * MIB)}) as r:
            refused = r.status
        refusal = time.perf_counter() - start
    document = reply["document"]
    stored = next((data_dir / "documents").rglob(document["id"]))
    leftovers = [p for p in (data_dir / "documents").rglob(".*.part")]
    if hashlib.sha256(stored.read_bytes()).hexdigest() != digest.hexdigest() or leftovers or refused != 413:
        raise RuntimeError(f"bad outcome: hash match, leftovers {leftovers}, over-limit status {refused}")
    return {"mib": mib, "seconds": elapsed, "mib_per_s": mib / elapsed, "rss_before_mib": before / 1024,
            "rss_peak_mib": sampler.peak / 1024, "rss_growth_mib": (sampler.peak - before) / 1024,
            "slowest_healthz_ms": slowest * 1000, "over_limit_413_ms": refusal * 1000}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mib", type=int, default=99, help="size of the upload in MiB (under the 100 MiB default limit)")
    args = ap.parse_args(argv)
    with demo_server("teleconsult-upload-") as (proc, base, links, tmp):
        result = asyncio.run(asyncio.wait_for(run(links["patient_link"], base, proc.pid, args.mib, tmp / "data"), 300))
        print(f"upload of {result['mib']} MiB: {result['seconds']:.2f} s, {result['mib_per_s']:.0f} MiB/s")
        print(f"server RSS: {result['rss_before_mib']:.1f} MiB before, peak {result['rss_peak_mib']:.1f} MiB "
              f"during (+{result['rss_growth_mib']:.1f} MiB)")
        print(f"slowest /healthz during the upload: {result['slowest_healthz_ms']:.1f} ms")
        print(f"over the limit (Content-Length 101 MiB): 413 after {result['over_limit_413_ms']:.1f} ms")
        print(json.dumps({k: round(v, 2) for k, v in result.items()}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
