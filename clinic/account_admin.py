"""The operator's hold on practitioner accounts: reset a password, disable or enable (sync, worker thread).

A disabled account cannot log in and its sessions end at once; so do the
sessions of an account whose password is reset (whoever held them may be the
reason for the reset).
"""

from __future__ import annotations

import logging

from . import tokens
from .database import Database, transaction
from .errors import NotFound
from .passwords import Passwords
from .registry import normalise_email

logger = logging.getLogger(__name__)


class AccountAdmin:
    """Blocking: every method runs SQL, so call it from the worker thread."""

    def __init__(self, conn: Database, passwords: Passwords | None = None) -> None:
        self._conn = conn
        self._passwords = passwords or Passwords()

    def _id(self, email: str) -> str:
        row = self._conn.execute("SELECT id FROM practitioner WHERE email = ?", (normalise_email(email),)).fetchone()
        if row is None:
            raise NotFound("no practitioner with this email")
        return str(row["id"])

    def set_disabled(self, email: str, disabled: bool) -> tuple[str, int]:
        """(practitioner id, sessions ended); NotFound for an unknown email."""
        practitioner_id = self._id(email)
        with transaction(self._conn) as conn:
            conn.execute("UPDATE practitioner SET disabled = ? WHERE id = ?", (int(disabled), practitioner_id))
            ended = conn.execute("DELETE FROM practitioner_session WHERE practitioner_id = ?",
                                 (practitioner_id,)).rowcount if disabled else 0
        logger.info("Practitioner(%s) %s, %d session(s) ended", practitioner_id,
                    "disabled" if disabled else "enabled", ended)
        return practitioner_id, ended

    def reset_password(self, email: str, password: str) -> tuple[str, int]:
        """New password, every session ended: (practitioner id, sessions ended)."""
        practitioner_id = self._id(email)
        password_hash = self._passwords.hash(password)
        with transaction(self._conn) as conn:
            conn.execute("UPDATE practitioner SET password_hash = ? WHERE id = ?", (password_hash, practitioner_id))
            ended = conn.execute("DELETE FROM practitioner_session WHERE practitioner_id = ?",
                                 (practitioner_id,)).rowcount
        logger.info("Practitioner(%s) password reset by the operator, %d session(s) ended", practitioner_id, ended)
        return practitioner_id, ended

    def change_password(self, practitioner_id: str, old: str, new: str, keep_token: str) -> int | None:
        """The practitioner's own change: None when `old` is wrong; else the other sessions ended.

        The session behind `keep_token` (the one making the change) stays open.
        """
        row = self._conn.execute("SELECT password_hash FROM practitioner WHERE id = ? AND disabled = 0",
                                 (practitioner_id,)).fetchone()
        if row is None or not self._passwords.verify(row["password_hash"], old):
            logger.info("Practitioner(%s) password change refused: wrong current password", practitioner_id)
            return None
        password_hash = self._passwords.hash(new)
        with transaction(self._conn) as conn:
            conn.execute("UPDATE practitioner SET password_hash = ? WHERE id = ?", (password_hash, practitioner_id))
            ended = conn.execute("DELETE FROM practitioner_session WHERE practitioner_id = ? AND token_hash != ?",
                                 (practitioner_id, tokens.token_hash(keep_token))).rowcount
        logger.info("Practitioner(%s) changed their password, %d other session(s) ended", practitioner_id, ended)
        return int(ended)

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM practitioner").fetchone()[0])
