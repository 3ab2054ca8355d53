"""Login benchmark: argon2 password checks of a real `teleconsult serve`, and what they cost others.

1. writes a temporary config.toml, gets the demo practitioner's credentials from
   `teleconsult demo --json`, starts `teleconsult serve` as a subprocess;
2. logs in `--n` times one after the other (median and slowest login);
3. logs in `--concurrent` times at once while timing `GET /healthz` (the event loop)
   and a logged-in `GET /day/status` (a database read) every 20 ms.

argon2 runs in the clinic's single database thread: the event loop never waits for
it (/healthz stays fast) but database reads queue behind the hashes in flight.
Bounded in time; stops the server it started, by its PID.

    .venv/bin/python benchmarks/login.py [--n 10] [--concurrent 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from call_cpu import demo_server  # noqa: E402

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


async def login(base: str, email: str, password: str) -> tuple[float, aiohttp.ClientSession]:
    """One browser's login; returns its duration (POST only) and the logged-in session."""
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    async with session.get(base + "/login") as r:
        token = CSRF.search(await r.text())
    assert token
    start = time.perf_counter()
    async with session.post(base + "/login", data={"email": email, "password": password, "csrf": token.group(1)},
                            allow_redirects=False) as r:
        assert r.status == 303, r.status
    return (time.perf_counter() - start) * 1000, session


async def run(base: str, email: str, password: str, n: int, concurrent: int) -> dict[str, float]:
    sequential = []
    for _ in range(n):
        ms, session = await login(base, email, password)
        sequential.append(ms)
        await session.close()
    _, reader = await login(base, email, password)
    samples: dict[str, list[float]] = {"healthz": [], "day_status": []}
    done = asyncio.Event()

    async def probe(path: str, key: str) -> None:
        while not done.is_set():
            start = time.perf_counter()
            async with reader.get(base + path) as r:
                await r.read()
            samples[key].append((time.perf_counter() - start) * 1000)
            await asyncio.sleep(0.02)

    probes = [asyncio.ensure_future(probe("/healthz", "healthz")), asyncio.ensure_future(probe("/day/status", "day_status"))]
    await asyncio.sleep(0.3)
    start = time.perf_counter()
    results = await asyncio.gather(*(login(base, email, password) for _ in range(concurrent)))
    burst_ms = (time.perf_counter() - start) * 1000
    done.set()
    await asyncio.gather(*probes)
    for _, session in results:
        await session.close()
    await reader.close()
    return {
        "login_median_ms": statistics.median(sequential), "login_max_ms": max(sequential),
        "concurrent": concurrent, "burst_ms": burst_ms,
        "healthz_max_ms": max(samples["healthz"]), "day_status_max_ms": max(samples["day_status"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--concurrent", type=int, default=8)
    args = ap.parse_args(argv)
    with demo_server("teleconsult-login-") as (_, base, demo, _):
        creds = demo["practitioner"]
        result = asyncio.run(asyncio.wait_for(run(base, creds["email"], creds["password"], args.n, args.concurrent), 300))
        print(f"login (argon2id verify + session): median {result['login_median_ms']:.0f} ms, "
              f"slowest {result['login_max_ms']:.0f} ms over {args.n}")
        print(f"{args.concurrent} logins at once: {result['burst_ms']:.0f} ms in all; meanwhile slowest /healthz "
              f"{result['healthz_max_ms']:.1f} ms, slowest /day/status {result['day_status_max_ms']:.0f} ms")
        print(json.dumps({k: round(v, 1) for k, v in result.items()}))
    return 0

if __name__ == "__main__":
    sys.exit(main())
