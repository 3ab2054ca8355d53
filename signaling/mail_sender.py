"""Delivers the mail queue: SMTP through aiosmtplib, or .eml files in the outbox folder.

A background task sends what is due, retries failures with exponential
backoff and gives up after `mail.max_attempts`; closing an act or scheduling a
consultation only queues a message, so a mail server that is down never blocks
them.  Errors are stored as a class name and SMTP code, never their text (it
may echo an address).
"""

from __future__ import annotations

import asyncio
import datetime
import email.message
import email.utils
import logging
import os
import uuid
from pathlib import Path

import aiosmtplib

from clinic import Clinic
from clinic.datafiles import PRIVATE_DIR, PRIVATE_FILE
from clinic.mail import MailMessage

from .background import BackgroundService
from .config import MailConfig

logger = logging.getLogger(__name__)

# longest sleep between two looks at the queue, in case a wake-up was missed
IDLE_CHECK_SECONDS = 60.0


def build_message(config: MailConfig, message: MailMessage) -> email.message.EmailMessage:
    """The RFC 5322 message of a queued mail: text, its HTML alternative, the calendar entry."""
    mail = email.message.EmailMessage()
    mail["From"] = config.sender
    mail["To"] = message.recipient
    mail["Subject"] = message.subject
    mail["Date"] = email.utils.formatdate(localtime=False)
    domain = email.utils.parseaddr(config.sender)[1].rpartition("@")[2] or "teleconsult.invalid"
    mail["Message-ID"] = f"<{message.id}@{domain}>"
    mail.set_content(message.body)
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    if message.calendar:
        # bytes, so the CRLF line ends of RFC 5545 travel untouched (base64)
        method = "CANCEL" if "\r\nMETHOD:CANCEL\r\n" in message.calendar else "REQUEST"
        mail.add_attachment(message.calendar.encode("utf-8"), maintype="text", subtype="calendar",
                            filename="rendez-vous.ics", params={"method": method, "charset": "utf-8"})
    return mail


def describe(exc: BaseException) -> str:
    """A short error text without the server's words (they may quote an address)."""
    code = getattr(exc, "code", None)
    return f"{type(exc).__name__}" + (f" {code}" if isinstance(code, int) else "")


def _write_eml(folder: Path, name: str, data: bytes) -> None:
    folder.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    temporary = folder / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        # 0600: the email holds the patient's link
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE),
                       "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, folder / name)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class Mailer(BackgroundService):
    """The background sender of one application; start() with it, stop() when it ends."""

    def __init__(self, clinic: Clinic, config: MailConfig, outbox: Path, ca_file: Path | None = None) -> None:
        super().__init__()
        self._clinic = clinic
        self._config = config
        self._outbox = outbox
        self._ca_file = ca_file
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A message was queued: look at the queue now."""
        self._wake.set()

    def retry_delay(self, attempts: int) -> datetime.timedelta:
        """Wait after the `attempts`-th failure: base * 2^(attempts-1), capped."""
        seconds = self._config.retry_base_seconds * 2 ** min(attempts - 1, 30)
        return datetime.timedelta(seconds=min(seconds, self._config.retry_max_seconds))

    async def _run(self) -> None:
        while True:
            try:
                await self.send_due()
                next_at = await self._clinic.practice.mail_next_due_at()
            except Exception:  # a bad round must not stop the sender
                logger.exception("mail round failed")
                next_at = None
            timeout = IDLE_CHECK_SECONDS
            if next_at is not None:
                now = datetime.datetime.now(datetime.UTC)
                timeout = min(timeout, max(0.05, (next_at - now).total_seconds()))
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()

    async def send_due(self) -> int:
        """Try every due message once; returns how many went out."""
        sent = 0
        for message in await self._clinic.practice.mail_due():
            try:
                await self.deliver(message)
            except Exception as exc:
                attempts = message.attempts + 1
                retry = None if attempts >= self._config.max_attempts else self.retry_delay(attempts)
                await self._clinic.practice.mail_failed(message.id, describe(exc), retry_in=retry)
            else:
                await self._clinic.practice.mail_sent(message.id)
                sent += 1
        return sent

    async def deliver(self, message: MailMessage) -> None:
        """Hand one message to the SMTP server, or write it to the outbox."""
        mail = build_message(self._config, message)
        smtp = self._config.smtp
        if not smtp.host:
            await asyncio.to_thread(_write_eml, self._outbox, f"{message.id}.eml", mail.as_bytes())
            return
        await aiosmtplib.send(
            mail,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username or None,
            password=smtp.password or None,
            use_tls=smtp.security == "tls",
            start_tls=True if smtp.security == "starttls" else False,
            timeout=smtp.timeout,
            cert_bundle=None if self._ca_file is None else str(self._ca_file),
        )
