"""Issue 17 item 6: data files private (0600, folders 0700) and temporary files swept at start.

Before: the database, its WAL/SHM and the outbox's .eml files (which hold the
patient's link) were created 0644, and a whiteboard upload's temporary file
survived a SIGKILL (start-up only swept documents/).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import signal
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from clinic import ConsultationState, Stage
from helpers.server import free_port, running_server
from signaling.keys import MAILER
from test_chat_files import upload
from helpers.ws_client import Client, enter_call


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual 022: files would be 0644 unless the code says otherwise."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


async def eventually(predicate, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.1)
    return predicate()


async def test_database_wal_outbox_and_documents_are_private(tmp_path: Path, loose_umask: None) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        cid = demo["consultation_id"]
        assert (await upload(demo["patient_link"], b"%PDF-1.4\n" + b"x" * 5000, "scan.pdf"))[0] == 201
        await server.clinic.update_consultation(cid, state=ConsultationState.ENDED,
                                                practitioner_stage=Stage.ENDED, patient_stage=Stage.ENDED)
        consultation = await server.clinic.get_consultation(cid)
        await server.clinic.practice.close_act(cid, consultation.practitioner_id, base_url=server.base_url,
                                               link_lifetime=datetime.timedelta(days=1), tz=datetime.UTC)
        server.app[MAILER].wake()
        outbox = server.config.outbox_path
        emails = await eventually(lambda: [p for p in outbox.glob("*.eml")] if outbox.exists() else [])
        assert emails, "the patient's email never reached the outbox"
        data = server.config.data_path
        database = data / "teleconsult.sqlite3"
        private = [database, Path(f"{database}-wal"), Path(f"{database}-shm"), *emails,
                   *(data / "documents").rglob("*")]
        assert {str(p.relative_to(tmp_path)): oct(mode(p)) for p in private if p.is_file()} == \
            {str(p.relative_to(tmp_path)): "0o600" for p in private if p.is_file()}
        assert len([p for p in private if p.is_file()]) >= 5
        assert mode(data) == 0o700 and mode(outbox) == 0o700


async def _serve(config: Path, log: Path, *args: str) -> asyncio.subprocess.Process:
    with log.open("ab") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "signaling.cli", "serve", "--config", str(config), *args,
            stdout=out, stderr=asyncio.subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))


async def _healthy(http: aiohttp.ClientSession, base: str, log: Path) -> None:
    for _ in range(300):  # up to 30 s for the server to listen
        try:
            async with http.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)
    raise AssertionError("server did not start: " + log.read_text())


async def _start_body(base: str, path: str, total: int, first: bytes) -> asyncio.StreamWriter:
    _, writer = await asyncio.open_connection("127.0.0.1", int(base.rsplit(":", 1)[1]))
    writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {total}\r\n\r\n".encode() + first)
    await writer.drain()
    return writer


async def test_temporary_files_of_a_killed_server_are_swept_and_its_files_are_private(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    config = tmp_path / "config.toml"
    config.write_text(f'[http]\nhost = "127.0.0.1"\nport = {port}\npublic_url = "{base}"\n'
                      f'[storage]\ndata_dir = "{data}"\n[ice]\nhost_addresses = ["127.0.0.1"]\n')
    log = tmp_path / "serve.log"
    proc = await _serve(config, log, "--demo")
    writers: list[asyncio.StreamWriter] = []
    try:
        async with aiohttp.ClientSession() as http:
            await _healthy(http, base, log)
            links = dict(re.findall(r"lien (praticien|patient)[^:]*: (\S+)", log.read_text()))
            doctor, patient = await Client.open(links["praticien"]), await Client.open(links["patient"])
            try:
                await enter_call(doctor, patient)
                png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 5000
                writers.append(await _start_body(base, links["patient"].removeprefix(base) + "/whiteboard/background",
                                                 100_000, png))
                writers.append(await _start_body(base, links["patient"].removeprefix(base) + "/files?name=a.pdf",
                                                 100_000, b"%PDF-1.4\n" + b"y" * 5000))
                def both_temporary() -> bool:
                    names = [p.name for p in data.rglob(".*") if p.is_file()]
                    return any(n.startswith(".upload-") for n in names) and any(n.endswith(".part") for n in names)

                assert await eventually(both_temporary), "the uploads never reached the disk"
                proc.send_signal(signal.SIGKILL)
                await proc.wait()
            finally:
                await doctor.close()
                await patient.close()
            assert both_temporary()  # SIGKILL: nobody cleaned up
            proc = await _serve(config, log)
            await _healthy(http, base, log)
            assert [p for p in data.rglob(".*") if p.is_file()] == []
            # everything the killed server wrote is private too (it ran under umask 077)
            files = [p for p in data.rglob("*") if p.is_file()]
            assert len(files) >= 3
            assert {str(p.relative_to(data)): oct(mode(p)) for p in files} == \
                {str(p.relative_to(data)): "0o600" for p in files}
            assert {oct(mode(p)) for p in [data, *(p for p in data.rglob("*") if p.is_dir())]} == {"0o700"}
    finally:
        for writer in writers:
            writer.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), 20)
    assert "Traceback" not in log.read_text()
