"""Clinic database benchmark: the same calls on SQLite (the baseline) and on PostgreSQL.

Starts a throw-away PostgreSQL (as tests/helpers/databases.py does: the `postgres` user, a
temporary folder, 127.0.0.1 only; fsync left ON here, as in production), then times
`--n` calls of each kind through the async Clinic API, one node and then two nodes
(two Clinic instances on one database) writing at once.  Prints p50/p95 per call and
the PostgreSQL / SQLite ratio.  Bounded in time; stops the server it started, by PID.

    unshare --net bash -c 'ip link set lo up && exec .venv/bin/python benchmarks/database.py [--n 200]'
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.databases import PostgresServer  # noqa: E402

from clinic import Clinic  # noqa: E402

DAY = datetime.timedelta(days=1)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3)}


async def timed(n: int, call: Callable[[int], Awaitable[object]]) -> list[float]:
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def measure(target: str | Path, documents: Path, n: int) -> dict[str, dict[str, float]]:
    first = await Clinic.open(target, invitation_lifetime=DAY, documents_dir=documents)
    second = await Clinic.open(target, invitation_lifetime=DAY, documents_dir=documents)
    try:
        doctor = await first.add_practitioner("bench@example.org", "a long password", "Dr Bench")
        patient = await first.add_patient("Bench", "bench@example.org", datetime.date(1970, 1, 1))
        await first.grant_access(doctor.id, patient.id)
        now = datetime.datetime.now(datetime.UTC)
        consultation, _ = await first.schedule_consultation(patient.id, doctor.id, now)
        cid = consultation.id
        results = {
            "get_consultation": await timed(n, lambda i: first.get_consultation(cid)),
            "add_chat_message": await timed(n, lambda i: first.add_chat_message(cid, "text", "patient", text=f"m{i}")),
            "chat_history_50": await timed(n, lambda i: first.chat_history(cid, limit=50)),
            "schedule_consultation": await timed(
                n // 4, lambda i: first.schedule_consultation(patient.id, doctor.id, now)),
        }
        # two nodes writing to the same consultation at once
        both = await asyncio.gather(
            timed(n, lambda i: first.add_chat_message(cid, "text", "patient", text=f"a{i}")),
            timed(n, lambda i: second.add_chat_message(cid, "text", "practitioner", text=f"b{i}")))
        results["add_chat_message_two_nodes"] = both[0] + both[1]
        return {name: percentiles(samples) for name, samples in results.items()}
    finally:
        await first.close()
        await second.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    server = PostgresServer(fsync=True)
    try:
        server.start()
        with tempfile.TemporaryDirectory() as tmp:
            sqlite = await measure(Path(tmp) / "bench.sqlite3", Path(tmp) / "documents", args.n)
            postgres = await measure(server.new_schema(), Path(tmp) / "documents", args.n)
    finally:
        server.stop()
    report = {name: {"sqlite": sqlite[name], "postgresql": postgres[name],
                     "ratio_p50": round(postgres[name]["p50_ms"] / sqlite[name]["p50_ms"], 2)}
              for name in sqlite}
    for name, row in report.items():
        print(f"{name:28} sqlite p50 {row['sqlite']['p50_ms']:7.3f} ms p95 {row['sqlite']['p95_ms']:7.3f} ms | "
              f"postgresql p50 {row['postgresql']['p50_ms']:7.3f} ms p95 {row['postgresql']['p95_ms']:7.3f} ms | "
              f"ratio {row['ratio_p50']}")
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
