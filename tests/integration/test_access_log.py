"""The access log of the real `teleconsult serve` never holds a link's token."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
from helpers.server import free_port


async def test_access_log_names_routes_not_tokens(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "http://127.0.0.1:{port}"\n'
                      f'[storage]\ndata_dir = "{tmp_path / "data"}"\n[operator]\nport = 0\n')
    log = tmp_path / "serve.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signaling.cli", "serve", "--config", str(config),
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=env)
    try:
        invitation, patient_link = "INVITATIONSECRET" + "a" * 27, "PATIENTLINKSECRET" + "b" * 26
        async with aiohttp.ClientSession() as http:
            for _ in range(200):  # up to 20 s for the server to listen
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("server did not start: " + log.read_text())
            for path in (f"/c/{invitation}", f"/c/{invitation}/files/x", f"/d/{patient_link}", "/nowhere"):
                async with http.get(f"http://127.0.0.1:{port}{path}") as r:
                    assert r.status == 404
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), 20)
    text = log.read_text()
    assert "SECRET" not in text
    # the requests are still logged, by their route
    assert "GET /c/{token} 404" in text
    assert "GET /d/{token} 404" in text
    assert "GET /healthz 200" in text
