"""Issue 17 item 7 (and the body timeout of item 6): outsiders' input never amplifies.

Against a real server on loopback: a request that fails HTTP parsing gets its 400 and
an access line (the access logger used to raise an AssertionError and write none, and
aiohttp logged a traceback); JSON nested 1,100 levels deep gets a `too-deep` error
(it used to raise RecursionError: `internal` and a traceback per message); a body
trickling 1 byte per 5 s is cut.  No traceback in the log for any of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from helpers.server import Running, running_server
from helpers.ws_client import Client


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.exc_info or r.exc_text]


async def raw_request(server: Running, data: bytes) -> bytes:
    host, port = server.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(4096), 10)
    finally:
        writer.close()


async def test_malformed_http_gets_400_and_an_access_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(tmp_path / "data") as server:
        for request in (b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
                        b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
                        b"GET /c/\x00\x01 HTTP/1.1\r\nHost: x\r\n\r\n"):
            reply = await raw_request(server, request)
            assert reply.split(b"\r\n")[0].split(b" ")[1] == b"400", reply[:80]
    access = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert sum("(no route) 400" in line for line in access) == 3, access
    assert tracebacks(caplog) == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_deep_json_is_refused_before_parsing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        for link in (demo["patient_link"], demo["practitioner_link"]):
            client = await Client.open(link)
            try:
                await client.recv("state")
                deep = '{"type": "chat", "text": "x", "id": ' + "[" * 1100 + "]" * 1100 + "}"
                for text in ("[" * 1100 + "]" * 1100, deep, "[" * 100_000):
                    await client.ws.send_str(text)
                    error = await client.recv("error")
                    assert error["code"] == "too-deep", error
                # an ordinary message still works on the same socket
                await client.ws.send_str(json.dumps({"type": "chat", "text": "still here"}))
                line = await client.recv("chat-message")
                assert line["text"] == "still here"
            finally:
                await client.close()
    assert tracebacks(caplog) == []


async def test_a_body_trickling_in_is_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    overrides = {"http.body_grace_seconds": 1.0, "http.body_min_bytes_per_second": 64}
    async with running_server(tmp_path / "data", **overrides) as server:
        demo = await server.demo()
        path = demo["patient_link"].removeprefix(server.base_url) + "/files?name=slow.txt"
        host, port = server.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".encode())
            cut = False
            for _ in range(4):  # 1 byte per 5 s, at most 20 s
                writer.write(b"a")
                await writer.drain()
                try:
                    data = await asyncio.wait_for(reader.read(4096), 5)
                except asyncio.TimeoutError:
                    continue
                except ConnectionError:
                    data = b""
                if not data or data.startswith(b"HTTP/1.1 4"):
                    cut = True
                    break
            assert cut, "the server kept waiting for a body trickling in"
        finally:
            writer.close()
        # nothing of it was stored
        assert not list((server.config.data_path / "documents").rglob("*.txt"))
    assert any("request body too slow" in r.getMessage() for r in caplog.records)
    assert tracebacks(caplog) == []


async def test_odd_requests_get_no_5xx_and_no_traceback(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with running_server(tmp_path / "data") as server:
        demo = await server.demo()
        patient = demo["patient_link"].removeprefix(server.base_url)
        doctor = demo["practitioner_link"].removeprefix(server.base_url)
        requests = [
            b"GET /c/%ZZ HTTP/1.1\r\nHost: x\r\n\r\n",
            f"POST {patient}/files?name=a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nhi\r\n0\r\n\r\n".encode(),
            b"GET / HTTP/1.1\r\nHost: x\r\nCookie: tc_session=\xff\xfe\r\n\r\n",
            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=zz\r\n"
            b"Content-Length: 10\r\n\r\n--zz\r\nabcd",
            b"GET /static/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: x\r\n\r\n",
            f"POST {doctor}/closing/documents HTTP/1.1\r\nHost: x\r\nX-File-Name: %FF%00\r\n"
            f"Content-Length: 3\r\n\r\nabc".encode(),
            b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"b" * 20000 + b"\r\n\r\n",
            f"GET {patient}/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 99\r\n\r\n".encode(),
            f"GET {patient}/whiteboard/{'0' * 32}/99999.png HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        ]
        for request in requests:
            status = int((await raw_request(server, request)).split(b" ")[1])
            assert 300 <= status < 500, (status, request[:60])
    assert tracebacks(caplog) == []
    # the one warning a test server gives at start: it seals nothing (no key file configured)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "key_file" not in r.getMessage()]
