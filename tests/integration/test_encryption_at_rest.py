"""Documents, recordings and whiteboard images sealed on disk, served decrypted with Range (issue 19 item 3)."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import urllib.parse
from pathlib import Path

import aiohttp
import av
import pytest

from recorder.manifest import read_manifest, write_manifest
from sealing import CHUNK, Keyring, generate_key, is_sealed
from sealing.stream import MAGIC
from helpers.server import running_server
from helpers.synthetic import sealed_recording
from helpers.ws_client import Client, enter_call, wait_composed
from helpers.media_files import png

MARKER = b"PATIENT-NOTE-7f3a9c-"
# several chunks, not a multiple of the chunk size: a range crosses chunk boundaries
PLAIN = b"".join(MARKER + str(i).encode() + b"\n" for i in range(12000))
HEAD = b"Observation " * 4


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def grep(folder: Path, pattern: bytes) -> list[Path]:
    """Every file under `folder` (database included) holding `pattern` in its raw bytes."""
    return [p for p in files_under(folder) if pattern in p.read_bytes()]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "teleconsult.keys"
    path.parent.mkdir()
    generate_key(path)
    return path


async def upload(link: str, data: bytes, name: str) -> dict[str, str]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{link}/files?name={urllib.parse.quote(name)}", data=io.BytesIO(data)) as r:
            assert r.status == 201, await r.text()
            document: dict[str, str] = (await r.json())["document"]
            return document


async def fetch(url: str, range_: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Range": range_} if range_ else {}
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers=headers) as r:
            return r.status, dict(r.headers), await r.read()


async def test_an_uploaded_file_is_unreadable_on_disk_and_served_whole_and_in_ranges(
        tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data, **{"storage.key_file": str(key_file)}) as server:
        demo = await server.demo()
        document = await upload(demo["patient_link"], HEAD + PLAIN, "notes.txt")
        assert not grep(data, MARKER), "the file's bytes are on disk in clear"
        [stored] = files_under(data / "documents")
        assert stored.read_bytes().startswith(MAGIC)
        url = f"{demo['patient_link']}/files/{document['id']}"
        whole = HEAD + PLAIN
        status, headers, body = await fetch(url)
        assert status == 200 and body == whole and headers["Accept-Ranges"] == "bytes"
        assert headers["X-Content-Type-Options"] == "nosniff"  # the security headers still apply
        size = len(whole)
        for asked, start, end in (
            ("bytes=0-99", 0, 100),
            (f"bytes={CHUNK - 10}-{CHUNK + 9}", CHUNK - 10, CHUNK + 10),  # across a chunk boundary
            (f"bytes={3 * CHUNK + 1}-", 3 * CHUNK + 1, size),
            ("bytes=-17", size - 17, size),
            (f"bytes=5-{size + 1000}", 5, size),
        ):
            status, headers, body = await fetch(url, asked)
            assert status == 206, asked
            assert headers["Content-Range"] == f"bytes {start}-{end - 1}/{size}" and body == whole[start:end], asked
        status, headers, _ = await fetch(url, f"bytes={size}-")
        assert status == 416 and headers["Content-Range"] == f"bytes */{size}"
        # the practitioner's copy through the record (the same code path) is sealed too
        assert (await server.clinic.get_document(document["id"])).size == size


async def test_without_a_key_files_stay_plain_and_the_server_warns(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="signaling.app")
    data = tmp_path / "data"
    async with running_server(data) as server:
        demo = await server.demo()
        await upload(demo["patient_link"], HEAD + PLAIN[:1000], "notes.txt")
    assert grep(data / "documents", MARKER)  # the check above can see a plain file
    assert "No [storage] key_file" in caplog.text


async def test_whiteboard_pages_are_sealed_and_served(tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "data"
    async with running_server(data, **{"storage.key_file": str(key_file)}) as server:
        demo = await server.demo()
        doctor, patient = await Client.open(demo["practitioner_link"]), await Client.open(demo["patient_link"])
        try:
            await enter_call(doctor, patient)
            async with aiohttp.ClientSession() as http:
                async with http.post(f"{demo['patient_link']}/whiteboard/background", data=png(400, 200)) as r:
                    assert r.status == 200, await r.text()
                    background = (await r.json())["background"]
            pages = files_under(data / "whiteboard")
            assert pages and all(is_sealed(p) for p in pages)
            assert not grep(data / "whiteboard", b"\x89PNG")
            status, headers, body = await fetch(f"{demo['patient_link']}/whiteboard/{background['id']}/0.png")
            assert status == 200 and body.startswith(b"\x89PNG") and headers["Content-Type"] == "image/png"
        finally:
            await doctor.close()
            await patient.close()


async def test_a_sealed_recording_cut_by_a_crash_is_composed_sealed_and_plays_in_ranges(
        tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "data"
    settings = {"storage.key_file": str(key_file), "recording.width": 320, "recording.height": 120}
    async with running_server(data, **settings) as server:
        demo = await server.demo()
    folder = data / "recordings" / demo["consultation_id"] / "r"
    manifest = sealed_recording(folder, 3.0, Keyring(key_file))
    track_files = [folder / t.file for t in manifest.tracks]
    assert all(is_sealed(p) for p in track_files) and not grep(folder, b"\x1a\x45\xdf\xa3")  # no clear EBML
    # a SIGKILL: the last chunk of the video track never got its final flag
    video = track_files[0]
    video.write_bytes(video.read_bytes()[:-9])
    manifest.state, manifest.duration, manifest.consultation_id = "recording", None, demo["consultation_id"]
    write_manifest(folder, manifest)
    async with running_server(data, **settings) as server:
        await wait_composed(server)
        stored = read_manifest(folder)
        assert stored.state == "composed" and stored.document_id
        document = await server.clinic.get_document(stored.document_id)
        path = await server.clinic.document_path(document)
        assert is_sealed(path) and not grep(data, b"ftypisom") and not list(folder.glob("*.mp4*"))
        link = server.base_url + urllib.parse.urlsplit(demo["patient_link"]).path  # the new server's port
        status, _, whole = await fetch(f"{link}/files/{document.id}")
        assert status == 200 and len(whole) == document.size and b"ftypisom" in whole[:64]
        with av.open(io.BytesIO(whole)) as c:
            assert c.duration is not None and 2.0 < c.duration / 1e6 < 3.5
        # a player seeking near the end asks for a range: only that part comes back
        status, _, tail = await fetch(f"{link}/files/{document.id}", f"bytes={len(whole) - 5000}-")
        assert status == 206 and tail == whole[-5000:]


def test_keys_rotate_reseals_every_stored_file(tmp_path: Path, key_file: Path) -> None:
    data = tmp_path / "data"
    (data / "documents" / "c").mkdir(parents=True)
    (data / "documents" / "c" / "plain").write_bytes(MARKER * 10)  # from before a key was set
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndata_dir = "{data}"\nkey_file = "{key_file}"\n')
    cli = [sys.executable, "-m", "signaling.cli", "--log-level", "WARNING", "keys"]
    result = subprocess.run([*cli, "rotate", "--config", str(config)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0 and "1 re-sealed" in result.stdout, result.stderr
    keyring = Keyring(key_file)
    assert len(key_file.read_text().splitlines()) == 2 and not grep(data, MARKER)
    stored = data / "documents" / "c" / "plain"
    assert stored.read_bytes()[len(MAGIC) + 1:].startswith(keyring.current_id.encode())
    from sealing import open_file
    with open_file(stored, keyring) as f:
        assert f.read() == MARKER * 10
    again = subprocess.run([*cli, "new", "--file", str(key_file)], capture_output=True, text=True, timeout=60,
                           check=False)
    assert again.returncode == 1 and "exists already" in again.stderr and "Traceback" not in again.stderr
