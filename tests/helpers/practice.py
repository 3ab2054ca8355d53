"""Helpers for the practice tests: a cookie-keeping HTTP client and a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
import datetime
import email
import email.message
import email.policy
import re
import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiosmtpd.controller import Controller
from yarl import URL

from helpers.server import Running, free_port

CSRF_RE = re.compile(r'name="csrf" value="([^"]+)"')


class Browserless:
    """An HTTP client that keeps cookies like a browser (no redirects followed unless asked)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    def plant(self, name: str, value: str) -> None:
        """Set a cookie as if the server had (an attacker's planted session, a hand-made one)."""
        self.session.cookie_jar.update_cookies({name: value}, response_url=URL(self.base_url))

    def cookie(self, name: str) -> str | None:
        for c in self.session.cookie_jar:
            if c.key == name:
                return c.value
        return None

    async def get(self, path: str, **kw: Any) -> tuple[aiohttp.ClientResponse, str]:
        async with self.session.get(self.base_url + path, allow_redirects=kw.pop("allow_redirects", False), **kw) as r:
            return r, await r.text(errors="replace")

    async def get_bytes(self, path: str, **kw: Any) -> tuple[aiohttp.ClientResponse, bytes]:
        async with self.session.get(self.base_url + path, allow_redirects=False, **kw) as r:
            return r, await r.read()

    async def csrf(self, path: str) -> str:
        _, text = await self.get(path)
        found = CSRF_RE.search(text)
        assert found, f"no CSRF field on {path}"
        return found.group(1)

    async def post(self, path: str, data: dict[str, str], *, csrf_from: str | None = None,
                   csrf: str | None = None) -> tuple[aiohttp.ClientResponse, str]:
        if csrf is None and csrf_from is not None:
            csrf = await self.csrf(csrf_from)
        form = dict(data)
        if csrf is not None:
            form["csrf"] = csrf
        async with self.session.post(self.base_url + path, data=form, allow_redirects=False) as r:
            return r, await r.text(errors="replace")

    async def login(self, email_: str, password: str) -> aiohttp.ClientResponse:
        response, _ = await self.post("/login", {"email": email_, "password": password}, csrf_from="/login")
        return response


class Inbox:
    """What a real aiosmtpd server received."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    async def wait(self, count: int = 1, timeout: float = 15.0) -> list[email.message.EmailMessage]:
        for _ in range(int(timeout / 0.05)):
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{count} mail(s) expected, got {len(self.messages)}")


@asynccontextmanager
async def smtp_server(port: int | None = None) -> AsyncIterator[tuple[Inbox, int]]:
    """A real SMTP server on a loopback port, in its own thread (aiosmtpd's Controller)."""
    inbox = Inbox()
    port = port or free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    await asyncio.to_thread(controller.start)
    try:
        yield inbox, port
    finally:
        await asyncio.to_thread(controller.stop)


def body_of(message: email.message.EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def link_in(message: email.message.EmailMessage, prefix: str) -> str:
    found = re.search(re.escape(prefix) + r"[A-Za-z0-9_-]+", body_of(message))
    assert found, body_of(message)
    return found.group(0)


def db_path(server: Running) -> Path:
    return server.config.data_path / "teleconsult.sqlite3"


def sql(server: Running, statement: str, *args: Any) -> list[sqlite3.Row]:
    """Run SQL on the server's database file from a second connection (as another process would)."""
    conn = sqlite3.connect(db_path(server), isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(statement, args).fetchall()
    finally:
        conn.close()


def past(days: int = 1) -> str:
    value = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=days)
    return value.isoformat(timespec="microseconds")
