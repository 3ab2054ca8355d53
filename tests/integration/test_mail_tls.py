"""The production SMTP client against a real aiosmtpd with STARTTLS or implicit TLS and a login.

The certificate is made at run time with openssl (self-signed for 127.0.0.1) and
given to the client through [mail.smtp] ca_file, as an operator with a private CA would.
"""

from __future__ import annotations

import asyncio
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from helpers.closing import closed_with_link_no_wait
from helpers.practice import Inbox, body_of, sql
from helpers.server import free_port, running_server


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class Accounts:
    """The relay's one account; records the logins it saw."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"relay-user", b"relay-secret"):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


# the test server's own warning about the auth_require_tls=False it needs for implicit TLS
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_mail_goes_out_over_tls_with_the_configured_login(tmp_path: Path, security: str) -> None:
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, accounts, port = Inbox(), Accounts(), free_port()
    tls: dict[str, Any] = ({"tls_context": context, "require_starttls": True} if security == "starttls"
                           # aiosmtpd does not see its implicit TLS as TLS when offering AUTH
                           else {"ssl_context": context, "auth_require_tls": False})
    controller = Controller(inbox, hostname="127.0.0.1", port=port, authenticator=accounts, auth_required=True, **tls)
    await asyncio.to_thread(controller.start)
    try:
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": security,
                     "mail.smtp.username": "relay-user", "mail.smtp.password": "relay-secret",
                     "mail.smtp.ca_file": str(cert)}
        async with running_server(tmp_path / "data", **overrides) as server:
            await closed_with_link_no_wait(server)
            (message,) = await inbox.wait(1)
            assert "/d/" in body_of(message)
            assert accounts.logins == ["relay-user"]
    finally:
        await asyncio.to_thread(controller.stop)


async def test_an_untrusted_certificate_is_refused_and_retried(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True)
    await asyncio.to_thread(controller.start)
    try:
        overrides = {"mail.smtp.host": "127.0.0.1", "mail.smtp.port": port, "mail.smtp.security": "starttls",
                     "mail.retry_base_seconds": 0.2}
        async with running_server(tmp_path / "data", **overrides) as server:
            await closed_with_link_no_wait(server)

            for _ in range(200):
                rows = sql(server, "SELECT attempts, last_error, state FROM mail_message")
                if rows and rows[0]["attempts"] >= 1:
                    break
                await asyncio.sleep(0.05)
            assert rows[0]["state"] == "queued" and rows[0]["last_error"]
            assert inbox.messages == []
    finally:
        await asyncio.to_thread(controller.stop)
