"""Practitioners' login sessions and the attempt counters behind rate limits (sync, worker thread)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import secrets
import sqlite3

from . import audit, timestamps, tokens
from .database import transaction
from .errors import TooManyAttempts
from .models import Practitioner
from .registry import Registry, normalise_email

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class WebSession:
    """A logged-in practitioner's session; the clear token lives only in their cookie."""

    practitioner: Practitioner
    csrf_token: str = dataclasses.field(repr=False)
    expires_at: datetime.datetime


@dataclasses.dataclass(frozen=True, slots=True)
class Login:
    """What a successful login returns: the new cookie token and its session."""

    token: str = dataclasses.field(repr=False)
    session: WebSession


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_failures` failures per key within `window`."""

    max_failures: int
    window: datetime.timedelta


class Attempts:
    """Failure counters keyed by (scope, key), e.g. ("login-address", "203.0.113.7")."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def count(self, scope: str, key: str, window: datetime.timedelta) -> int:
        """Failures recorded for this key within the last `window`."""
        since = timestamps.to_text(timestamps.utc_now() - window)
        row = self._conn.execute(
            "SELECT COUNT(*) FROM attempt WHERE scope = ? AND key = ? AND at > ?", (scope, key, since)
        ).fetchone()
        return int(row[0])

    def add(self, conn: sqlite3.Connection, scope: str, key: str) -> None:
        """Record one failure (inside the caller's transaction)."""
        conn.execute("INSERT INTO attempt (scope, key, at) VALUES (?, ?, ?)",
                     (scope, key, timestamps.to_text(timestamps.utc_now())))

    def check(self, limits: dict[tuple[str, str], RateLimit]) -> None:
        """TooManyAttempts if any of these keys is at its limit."""
        for (scope, key), limit in limits.items():
            if self.count(scope, key, limit.window) >= limit.max_failures:
                logger.info("rate limit reached for %s", scope)
                raise TooManyAttempts(f"too many failed attempts ({scope}); try again later")

    def purge(self, older_than: datetime.timedelta) -> None:
        """Forget failures older than `older_than`."""
        with transaction(self._conn) as conn:
            conn.execute("DELETE FROM attempt WHERE at < ?",
                         (timestamps.to_text(timestamps.utc_now() - older_than),))


class Accounts:
    """Logins (rate-limited), sessions and logouts of practitioners.

    Blocking: every method runs SQL (and argon2 for logins), so call it from the worker thread.
    """

    def __init__(self, conn: sqlite3.Connection, registry: Registry) -> None:
        self._conn = conn
        self._registry = registry
        self.attempts = Attempts(conn)

    def login(
        self,
        email: str,
        password: str,
        *,
        address: str,
        limit: RateLimit,
        lifetime: datetime.timedelta,
        previous_token: str | None = None,
    ) -> Login | None:
        """Check the password and open a new session (the previous one is closed: no fixation).

        None on a wrong email or password; TooManyAttempts when the account or the
        address failed too often lately (the password is then not even checked).
        """
        try:
            account = normalise_email(email)
        except ValueError:
            return None
        keys = {("login-account", account): limit, ("login-address", address): limit}
        self.attempts.check(keys)
        practitioner = self._registry.verify_practitioner(account, password)
        if practitioner is None:
            with transaction(self._conn) as conn:
                for scope, key in keys:
                    self.attempts.add(conn, scope, key)
            return None
        token = tokens.new_token()
        now = timestamps.utc_now()
        session = WebSession(practitioner, secrets.token_urlsafe(32), now + lifetime)
        with transaction(self._conn) as conn:
            if previous_token is not None and tokens.is_well_formed(previous_token):
                conn.execute("DELETE FROM practitioner_session WHERE token_hash = ?",
                             (tokens.token_hash(previous_token),))
            conn.execute("DELETE FROM practitioner_session WHERE expires_at < ?", (timestamps.to_text(now),))
            conn.execute(
                "INSERT INTO practitioner_session (token_hash, practitioner_id, csrf_token, created_at,"
                " expires_at) VALUES (?, ?, ?, ?, ?)",
                (tokens.token_hash(token), practitioner.id, session.csrf_token, timestamps.to_text(now),
                 timestamps.to_text(session.expires_at)),
            )
            conn.execute("DELETE FROM attempt WHERE scope = 'login-account' AND key = ?", (account,))
            audit.append(conn, "practitioner", practitioner.id, "login")
        logger.info("Practitioner(%s) logged in", practitioner.id)
        return Login(token, session)

    def session(self, token: str) -> WebSession | None:
        """The live session behind a cookie token, or None (unknown, malformed or expired)."""
        if not tokens.is_well_formed(token):
            return None
        row = self._conn.execute(
            "SELECT s.csrf_token, s.expires_at, p.id, p.email, p.display_name FROM practitioner_session s"
            " JOIN practitioner p ON p.id = s.practitioner_id WHERE s.token_hash = ?",
            (tokens.token_hash(token),),
        ).fetchone()
        if row is None:
            return None
        expires_at = timestamps.from_text(row["expires_at"])
        if expires_at <= timestamps.utc_now():
            return None
        practitioner = Practitioner(id=row["id"], email=row["email"], display_name=row["display_name"])
        return WebSession(practitioner, row["csrf_token"], expires_at)

    def logout(self, token: str) -> None:
        """Close the session behind a cookie token (idempotent)."""
        if not tokens.is_well_formed(token):
            return
        with transaction(self._conn) as conn:
            row = conn.execute("SELECT practitioner_id FROM practitioner_session WHERE token_hash = ?",
                               (tokens.token_hash(token),)).fetchone()
            if row is None:
                return
            conn.execute("DELETE FROM practitioner_session WHERE token_hash = ?", (tokens.token_hash(token),))
            audit.append(conn, "practitioner", row["practitioner_id"], "logout")
        logger.info("Practitioner(%s) logged out", row["practitioner_id"])
