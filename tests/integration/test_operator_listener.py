"""The operator's listener, readiness, the free-space floor, and the client's address behind a proxy."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp

from helpers.server import free_port, running_server
from signaling.keys import MAILER, RECORDINGS


async def test_readyz_is_ready_then_names_the_stopped_mail_sender(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        async with http.get(srv.operator_url + "/readyz") as r:
            assert r.status == 200
            report = await r.json()
        assert report == {"status": "ready", "failed": [],
                          "checks": {"database": "ok", "data_dir": "ok", "mail_queue": "ok", "composer": "ok"}}
        await srv.app[MAILER].stop()
        async with http.get(srv.operator_url + "/readyz") as r:
            assert r.status == 503
            report = await r.json()
        assert report["failed"] == ["mail_queue"] and "not running" in report["checks"]["mail_queue"]
        async with http.get(srv.operator_url + "/healthz") as r:
            assert r.status == 200  # alive, even when not ready


async def test_under_the_free_space_floor_uploads_are_refused_and_readyz_fails(tmp_path: Path) -> None:
    # a floor far above any disk's free space stands for a full disk
    async with running_server(tmp_path / "data", **{"storage.min_free_mb": 10**12}) as srv, \
            aiohttp.ClientSession() as http:
        demo = await srv.demo()
        async with http.post(demo["patient_link"] + "/files?name=note.txt", data=b"hello") as r:
            assert r.status == 507
            body = await r.json()
        assert body["error"] == "disk-full" and "disk space" in body["message"]
        assert not list((srv.config.data_path / "documents").rglob("*.txt"))  # nothing kept
        async with http.post(demo["patient_link"] + "/whiteboard/background", data=b"x" * 2000) as r:
            assert r.status in (409, 507)  # not in a call: refused before the disk is even looked at
        async with http.get(srv.operator_url + "/readyz") as r:
            assert r.status == 503
            report = await r.json()
        assert report["failed"] == ["data_dir"] and "MiB floor" in report["checks"]["data_dir"]


async def _wait_listening(http: aiohttp.ClientSession, url: str, log: Path) -> None:
    for _ in range(200):  # up to 20 s for the server to listen
        try:
            async with http.get(url) as r:
                if r.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("server did not start: " + log.read_text())


async def test_serve_behind_a_trusted_proxy_with_json_logs(tmp_path: Path) -> None:
    """The real `teleconsult serve`: operator port apart, forwarded header believed from the proxy only."""
    port, operator_port = free_port(), free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "https://visio.example.org"\n'
                      'trusted_proxies = ["127.0.0.1/32"]\n'
                      f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
                      f'[operator]\nport = {operator_port}\n[logging]\nformat = "json"\n')
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    public, operator = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{operator_port}"
    try:
        async with aiohttp.ClientSession() as http:
            await _wait_listening(http, operator + "/healthz", log)
            # the proxy (127.0.0.1) names the client
            async with http.get(public + "/login", headers={"X-Forwarded-For": "198.51.100.7"}) as r:
                assert r.status == 200
                assert r.headers["Strict-Transport-Security"].startswith("max-age=")
            async with http.get(public + "/healthz", headers={"Forwarded": 'for="[2001:db8::5]:443";proto=https'}) as r:
                assert r.status == 200
            for path in ("/metrics", "/stats", "/mail/status"):
                async with http.get(public + path, headers={"X-Forwarded-For": "127.0.0.1"}) as r:
                    assert r.status == 404, path
            async with http.get(operator + "/metrics") as r:
                metrics = await r.text()
            assert "process_cpu_seconds_total" in metrics and "teleconsult_rooms 0.0" in metrics
            # the server watches its own event loop from the start: /stats has it once collected (every 2 s)
            for _ in range(50):
                async with http.get(operator + "/stats") as r:
                    snapshot = await r.json()
                if snapshot["collected_at"] is not None:
                    break
                await asyncio.sleep(0.2)
            assert snapshot["event_loop"]["wakes"] > 10 and set(snapshot["event_loop"]["late"]) == {"10", "50", "200"}
            async with http.get(operator + "/metrics") as r:
                assert 'teleconsult_event_loop_lag_max_seconds{process="main"}' in await r.text()
        # a client that is not a proxy (127.0.0.2) cannot choose its address
        connector = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.get(public + "/login", headers={"X-Forwarded-For": "203.0.113.66"}) as r:
                assert r.status == 200
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    access = [line["message"] for line in lines if line["logger"] == "aiohttp.access"]
    assert "198.51.100.7 GET /login 200" in " ".join(access)
    assert "2001:db8::5 GET /healthz 200" in " ".join(access)
    assert "127.0.0.2 GET /login 200" in " ".join(access)
    assert "203.0.113.66" not in log.read_text()


async def test_readyz_names_a_dead_composing_worker(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as srv, aiohttp.ClientSession() as http:
        service = srv.app[RECORDINGS]
        assert await service.compose(tmp_path / "no-such-recording") is None  # starts the worker process
        (worker,) = service._pool._processes.values()  # type: ignore[union-attr]
        os.kill(worker.pid, signal.SIGKILL)
        for _ in range(100):  # the pool notices within moments; bounded at 10 s
            async with http.get(srv.operator_url + "/readyz") as r:
                report = await r.json()
            if report["failed"]:
                break
            await asyncio.sleep(0.1)
        assert r.status == 503 and report["failed"] == ["composer"], report
        assert report["checks"]["composer"] == "the composing worker died"


_SMALL_DOCUMENTS_DISK = """
import asyncio, json, sys
from pathlib import Path
import aiohttp
from helpers.server import running_server

async def main() -> None:
    data, documents = Path(sys.argv[1]), sys.argv[2]
    # documents on the 4 MiB disk, everything else on the big one: an 8 MiB floor is under
    # the big disk's free space and over the small one's
    async with running_server(data, **{"storage.documents_dir": documents, "storage.min_free_mb": 8}) as srv, \\
            aiohttp.ClientSession() as http:
        demo = await srv.demo()
        async with http.post(demo["patient_link"] + "/files?name=note.txt", data=b"hello") as r:
            upload = r.status, await r.json()
        async with http.get(srv.operator_url + "/readyz") as r:
            ready = r.status, await r.json()
    print(json.dumps({"upload": upload, "ready": ready,
                      "kept": [p.name for p in Path(documents).rglob("*.txt")]}))

asyncio.run(main())
"""


async def test_the_floor_applies_to_the_documents_disk_when_it_is_not_the_data_disk(tmp_path: Path) -> None:
    """A real 4 MiB tmpfs (in a private mount namespace) holds the documents: a full shared mount."""
    documents = tmp_path / "documents"
    documents.mkdir()
    tests = Path(__file__).resolve().parents[1]
    process = await asyncio.create_subprocess_exec(
        "unshare", "--mount", "sh", "-c", 'mount -t tmpfs -o size=4m tmpfs "$1" && shift && exec "$@"', "sh",
        str(documents), sys.executable, "-c", _SMALL_DOCUMENTS_DISK, str(tmp_path / "data"), str(documents),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])})
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()[-3000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    status, body = result["upload"]
    assert status == 507 and body["error"] == "disk-full"
    status, report = result["ready"]
    assert status == 503 and report["failed"] == ["data_dir"]
    assert "documents folder" in report["checks"]["data_dir"] and "8 MiB floor" in report["checks"]["data_dir"]
    assert result["kept"] == []
