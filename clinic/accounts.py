"""Practitioners' login sessions and the attempt counters behind rate limits (sync, worker thread)."""

from __future__ import annotations

import dataclasses
import datetime
import logging
import secrets

from . import audit, timestamps, tokens
from .database import Database, transaction
from .errors import TooManyAttempts
from .models import Practitioner
from .passwords import Passwords
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
class LoginCheck:
    """What the first step of a login found (the hash never leaves the clinic package)."""

    account: str
    address: str
    practitioner: Practitioner | None
    password_hash: str | None = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_failures` failures per key within `window`."""

    max_failures: int
    window: datetime.timedelta


class Attempts:
    """Failure counters keyed by (scope, key), e.g. ("login-address", "203.0.113.7")."""

    def __init__(self, conn: Database) -> None:
        self._conn = conn

    def count(self, scope: str, key: str, window: datetime.timedelta) -> int:
        """Failures recorded for this key within the last `window`."""
        since = timestamps.to_text(timestamps.utc_now() - window)
        row = self._conn.execute(
            "SELECT COUNT(*) FROM attempt WHERE scope = ? AND key = ? AND at > ?", (scope, key, since)
        ).fetchone()
        return int(row[0])

    def add(self, conn: Database, scope: str, key: str) -> None:
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

    Blocking: every method but check_password runs SQL, so call it from the worker
    thread; check_password runs argon2, so call it from another thread, where it does
    not hold up every other database call.
    """

    def __init__(self, conn: Database, registry: Registry, passwords: Passwords | None = None) -> None:
        self._conn = conn
        self._registry = registry
        self._passwords = passwords or Passwords()
        self.attempts = Attempts(conn)

    def begin_login(self, email: str, *, address: str, limit: RateLimit) -> LoginCheck | None:
        """First step of a login, in the database thread: rate limits, then the stored hash.

        None for an email that cannot be one; TooManyAttempts when the account or the
        address failed too often lately (the password is then not even checked).
        """
        try:
            account = normalise_email(email)
        except ValueError:
            return None
        self.attempts.check({("login-account", account): limit, ("login-address", address): limit})
        # a disabled account is answered like an unknown one
        row = self._conn.execute("SELECT id, email, display_name, password_hash FROM practitioner"
                                 " WHERE email = ? AND disabled = 0", (account,)).fetchone()
        if row is None:
            return LoginCheck(account, address, None, None)
        practitioner = Practitioner(id=row["id"], email=row["email"], display_name=row["display_name"])
        return LoginCheck(account, address, practitioner, row["password_hash"])

    def check_password(self, check: LoginCheck, password: str) -> bool:
        """Second step, in any thread but the database's: argon2 (slow on purpose, releases the GIL)."""
        if check.password_hash is None:
            self._passwords.waste_time(password)  # unknown emails cost as much as known ones
            return False
        return self._passwords.verify(check.password_hash, password)

    def finish_login(self, check: LoginCheck, ok: bool, *, lifetime: datetime.timedelta,
                     previous_token: str | None = None) -> Login | None:
        """Last step, in the database thread: count a failure, or open a new session.

        The session the browser came with is deleted (no fixation).
        """
        if not ok or check.practitioner is None:
            with transaction(self._conn) as conn:
                self.attempts.add(conn, "login-account", check.account)
                self.attempts.add(conn, "login-address", check.address)
            if check.practitioner is not None:
                logger.info("Practitioner(%s) failed password check", check.practitioner.id)
            return None
        practitioner = check.practitioner
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
            conn.execute("DELETE FROM attempt WHERE scope = 'login-account' AND key = ?", (check.account,))
            audit.append(conn, "practitioner", practitioner.id, "login")
        logger.info("Practitioner(%s) logged in", practitioner.id)
        return Login(token, session)

    def session(self, token: str) -> WebSession | None:
        """The live session behind a cookie token, or None (unknown, malformed or expired)."""
        if not tokens.is_well_formed(token):
            return None
        row = self._conn.execute(
            "SELECT s.csrf_token, s.expires_at, p.id, p.email, p.display_name FROM practitioner_session s"
            " JOIN practitioner p ON p.id = s.practitioner_id WHERE s.token_hash = ? AND p.disabled = 0",
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
