"""Chat and shared files against a real server on loopback: WebSocket, HTTP, SQLite and the disk."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import io
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp
import helpers.media_files as media_files
import pytest
from helpers.server import Running, running_server
from helpers.ws_client import Client, both, enter_call

from clinic import Role

MB = 1 << 20


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def documents_dir(server: Running) -> Path:
    return server.config.data_path / "documents"


async def eventually(predicate: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


async def upload(link: str, data: bytes, name: str, **headers: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as session:
        url = f"{link}/files?name={urllib.parse.quote(name)}"
        async with session.post(url, data=io.BytesIO(data), headers=headers) as response:
            body = await response.json() if response.content_type == "application/json" else {}
            return response.status, body


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with running_server(tmp_path / "data", **{"ice.connect_timeout": 2.0}) as running:
        yield running


async def test_text_chat_reaches_both_sides_and_comes_back_after_a_reload(server: Running) -> None:
    demo, doctor, patient = await both(server)
    history = await patient.recv("chat-history")
    assert history == {"type": "chat-history", "messages": [], "max_chars": 4000, "max_upload_bytes": 100 * MB}
    await enter_call(doctor, patient)
    # entering the call is told in the chat, as keys the browser translates
    joined = [await patient.recv("chat-message") for _ in range(2)]
    assert {(m["kind"], m["author"], m["key"], m["params"]["role"]) for m in joined} == {
        ("system", "system", "joined", "practitioner"), ("system", "system", "joined", "patient")}

    await patient.send(type="chat", text="Bonjour docteur,\r\nj'ai mal \x07à la tête.")
    for side in (doctor, patient):
        message = await side.recv("chat-message")
        while message["kind"] != "text":
            message = await side.recv("chat-message")
        assert message["author"] == "patient"
        assert message["text"] == "Bonjour docteur,\nj'ai mal à la tête."
        at = datetime.datetime.fromisoformat(message["at"])
        assert abs((datetime.datetime.now(datetime.UTC) - at).total_seconds()) < 600
    await doctor.send(type="chat", text="Bonjour ! 👋")
    await patient.recv("chat-message")

    # a reload: the whole conversation again, in order
    await patient.close()
    again = await Client.open(demo["patient_link"])
    history = await again.recv("chat-history")
    texts = [(m["author"], m.get("text")) for m in history["messages"] if m["kind"] == "text"]
    assert texts == [("patient", "Bonjour docteur,\nj'ai mal à la tête."), ("practitioner", "Bonjour ! 👋")]
    assert [m["kind"] for m in history["messages"]][:2] == ["system", "system"]
    await again.close()
    await doctor.close()


BAD_CHAT = [
    ('{"type": "chat"}', "bad-message", "missing field 'text'"),
    ('{"type": "chat", "text": 12}', "bad-message", "'chat.text' must be"),
    ('{"type": "chat", "text": null}', "bad-message", "'chat.text' must be"),
    ('{"type": "chat", "text": "   \\n\\t "}', "bad-message", "must not be empty"),
    ('{"type": "chat", "text": "\\u0000\\u0007"}', "bad-message", "must not be empty"),
    ('{"type": "chat", "text": "' + "x" * 4001 + '"}', "bad-message", "longer than 4000 characters"),
    ('{"type": "chat", "text": "\\ud800"}', "bad-message", "not valid Unicode"),
    ('{"type": "chat", "text": "hi", "html": "<b>"}', "bad-message", "unknown field 'html'"),
    ('{"type": "chat-message", "text": "hi"}', "unknown-type", "unknown message type 'chat-message'"),
]


@pytest.mark.parametrize(("frame", "code", "words"), BAD_CHAT)
async def test_malformed_chat_messages_get_an_error_and_nothing_is_stored(
    server: Running, frame: str, code: str, words: str
) -> None:
    demo, doctor, patient = await both(server)
    await patient.recv("chat-history")
    await patient.ws.send_str(frame)
    error = await patient.recv("error")
    assert error["code"] == code and words in error["message"], error
    # the session goes on, and nothing was stored or shown to the other side
    await patient.send(type="chat", text="still here")
    assert (await doctor.recv("chat-message"))["text"] == "still here"
    history = await server.clinic.chat_history(demo["consultation_id"], limit=100)
    assert [m.text for m in history] == ["still here"]
    await doctor.close()
    await patient.close()


async def test_chat_is_rate_limited(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"chat.max_per_minute": 3}) as server:
        demo, doctor, patient = await both(server)
        for i in range(3):
            await patient.send(type="chat", text=f"m{i}", id=f"n{i}")
        await patient.send(type="chat", text="one too many", id="n3")
        error = await patient.recv("error")
        assert (error["code"], error["ref_id"]) == ("rate-limited", "n3")
        assert "3 chat messages a minute" in error["message"]
        # the other side may still write
        await doctor.send(type="chat", text="ok")
        message = await doctor.recv("chat-message")
        while message.get("text") != "ok":
            message = await doctor.recv("chat-message")
        history = await server.clinic.chat_history(demo["consultation_id"], limit=100)
        assert [m.text for m in history] == ["m0", "m1", "m2", "ok"]
        await doctor.close()
        await patient.close()


async def test_upload_posts_a_file_message_and_serves_it_to_participants_only(server: Running) -> None:
    demo, doctor, patient = await both(server)
    await doctor.recv("chat-history")
    data = media_files.png(64, 48)
    status, body = await upload(demo["patient_link"], data, "../radio du genou.png",
                                **{"Content-Type": "image/jpeg"})  # the label is ignored
    assert status == 201, body
    document = body["document"]
    assert (document["name"], document["media_type"], document["size"]) == ("radio du genou.png", "image/png", len(data))
    assert document["url"] == f"files/{document['id']}"
    message = await doctor.recv("chat-message")
    assert (message["kind"], message["author"], message["document"]) == ("file", "patient", document)

    url = f"/files/{document['id']}"
    other = await server.clinic.ensure_demo(server.base_url, server.config.data_path)  # another consultation
    async with aiohttp.ClientSession() as session:
        for link in (demo["patient_link"], demo["practitioner_link"]):
            async with session.get(link + url) as response:
                assert response.status == 200
                assert await response.read() == data
                assert response.headers["Content-Type"] == "image/png"
                assert response.headers["X-Content-Type-Options"] == "nosniff"
                assert response.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
                assert response.headers["Cache-Control"] == "private, no-store"
                assert response.headers["Content-Disposition"] == (
                    "inline; filename=\"radio du genou.png\"; filename*=UTF-8''radio%20du%20genou.png")
        # seeking: byte ranges
        async with session.get(demo["patient_link"] + url, headers={"Range": "bytes=8-15"}) as response:
            assert response.status == 206
            assert await response.read() == data[8:16]
        base = server.base_url + "/c/"
        refused = [
            other.patient_link + url,  # the patient of another consultation
            other.practitioner_link + url,  # the practitioner, through another consultation's link
            base + "not-a-token" + url,  # anonymous
            base + "x" * 43 + url,
            demo["patient_link"] + "/files/" + "0" * 32,  # unknown document
            demo["patient_link"] + "/files/../../teleconsult.sqlite3",
            demo["patient_link"] + "/files/" + document["id"].upper(),
        ]
        for address in refused:
            async with session.get(address) as response:
                assert response.status == 404, address
                assert b"radio" not in await response.read()
        # the same 404 for an upload through a bad link, and nothing stored
        async with session.post(base + "x" * 43 + "/files?name=a.txt", data=b"hello") as response:
            assert response.status == 404
    assert len(files_under(documents_dir(server))) == 1
    await doctor.close()
    await patient.close()


async def test_expired_link_cannot_read_the_files(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        status, body = await upload(demo["patient_link"], b"compte rendu", "cr.txt")
        assert status == 201
        invitation = await server.clinic.resolve_invitation(demo["patient_link"].rsplit("/", 1)[1])
        await server.clinic.revoke_invitation(invitation.id)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{demo['patient_link']}/files/{body['document']['id']}") as response:
                assert response.status == 404
            async with session.get(f"{demo['practitioner_link']}/files/{body['document']['id']}") as response:
                assert response.status == 200
                assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
                assert response.headers["Content-Disposition"].startswith("attachment;")


async def test_executable_named_png_is_only_ever_a_download(server: Running) -> None:
    demo = await server.demo()
    status, body = await upload(demo["patient_link"], media_files.elf(), "photo.png", **{"Content-Type": "image/png"})
    assert status == 201
    assert body["document"]["media_type"] == "application/octet-stream"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{demo['practitioner_link']}/files/{body['document']['id']}") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "application/octet-stream"
            assert response.headers["Content-Disposition"].startswith("attachment;")
            assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_unrecognised_files_are_refused_when_not_allowed(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"documents.allowed_types": ["image/png", "application/pdf"]}) as server:
        demo = await server.demo()
        status, body = await upload(demo["patient_link"], media_files.elf(), "photo.png")
        assert status == 415
        assert body["error"] == "type-refused" and body["media_type"] == "application/octet-stream"
        assert "n'est pas accepté" in body["message"] and "not accepted" in body["message"]
        status, _ = await upload(demo["patient_link"], media_files.pdf(), "cr.pdf")
        assert status == 201
        assert len(files_under(documents_dir(server))) == 1
        assert len(await server.clinic.list_documents(consultation_id=demo["consultation_id"])) == 1


async def test_over_the_limit_gets_413_and_leaves_nothing(tmp_path: Path) -> None:
    async with running_server(tmp_path / "data", **{"documents.max_upload_bytes": 2 * MB}) as server:
        demo = await server.demo()
        # announced up front
        status, body = await upload(demo["patient_link"], b"\0" * (2 * MB + 1), "big.bin")
        assert status == 413
        assert body["error"] == "too-large" and body["max_bytes"] == 2 * MB
        assert "taille maximale autorisée (2 Mo)" in body["message"]
        assert "maximum allowed size (2 MB)" in body["message"]

        # not announced (chunked): counted while streaming
        async def chunks() -> Any:
            for _ in range(40):
                yield b"\0" * 100_000

        async with aiohttp.ClientSession() as session:
            async with session.post(f"{demo['patient_link']}/files?name=big.bin", data=chunks()) as response:
                assert response.status == 413
                assert (await response.json())["error"] == "too-large"
        # exactly at the limit is fine
        status, body = await upload(demo["patient_link"], b"a" * (2 * MB), "edge.txt")
        assert status == 201 and body["document"]["size"] == 2 * MB
        assert [p.name for p in files_under(documents_dir(server))] == [body["document"]["id"]]
        assert len(await server.clinic.list_documents(consultation_id=demo["consultation_id"])) == 1


async def test_an_interrupted_upload_leaves_nothing_behind(server: Running) -> None:
    demo = await server.demo()
    token_path = urllib.parse.urlsplit(demo["patient_link"]).path
    folder = documents_dir(server)
    for cut in ("content-length", "chunked"):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.config.http.port)
        framing = "Content-Length: 20000000" if cut == "content-length" else "Transfer-Encoding: chunked"
        writer.write(f"POST {token_path}/files?name=cut.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n{framing}\r\n\r\n".encode())
        block = b"\x01" * 1_000_000
        for _ in range(3):
            writer.write(block if cut == "content-length" else b"%x\r\n" % len(block) + block + b"\r\n")
            await writer.drain()
        # the server is writing it: a temporary file exists, under its temporary name only
        parts = await eventually(lambda: [p for p in files_under(folder) if p.name.endswith(".part")])
        assert parts and all(p.name.startswith(".") for p in files_under(folder)), files_under(folder)
        writer.transport.abort()  # the connection drops mid-body
        assert await eventually(lambda: not files_under(folder)), files_under(folder)
    assert await server.clinic.list_documents(consultation_id=demo["consultation_id"]) == []
    assert await server.clinic.chat_history(demo["consultation_id"], limit=10) == []


async def test_upload_while_nobody_is_connected_is_in_the_history(server: Running) -> None:
    demo = await server.demo()
    status, body = await upload(demo["practitioner_link"], media_files.wav(0.2), "souffle.wav")
    assert status == 201 and body["message"]["author"] == "practitioner"
    patient = await Client.open(demo["patient_link"])
    history = await patient.recv("chat-history")
    assert [m["document"]["media_type"] for m in history["messages"]] == ["audio/wav"]
    document = await server.clinic.get_document(body["document"]["id"])
    path = await server.clinic.document_path(document)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == document.sha256
    await patient.close()


async def test_hangup_is_told_in_the_chat(server: Running) -> None:
    demo, doctor, patient = await both(server)
    await enter_call(doctor, patient)
    await patient.send(type="hangup")
    left = await doctor.recv("chat-message")
    while left["key"] != "left":
        left = await doctor.recv("chat-message")
    assert left["params"] == {"role": Role.PATIENT.value}
    await patient.send(type="join")
    await doctor.send(type="hangup")
    ended = await patient.recv("chat-message")
    while ended["key"] != "ended":
        ended = await patient.recv("chat-message")
    assert json.dumps(ended["params"]) == "{}"
    await doctor.close()
    await patient.close()
