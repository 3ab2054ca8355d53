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
    """What the first step of a login found (the hash never leaves the clinic package).

    `attempt_at` is when this very login was counted (per account and per address),
    before the password was checked: a success takes those rows back.
    """

    account: str
    address: str
    practitioner: Practitioner | None
    password_hash: str | None = dataclasses.field(repr=False)
    attempt_at: str = ""


@dataclasses.dataclass(frozen=True, slots=True)
class RateLimit:
    """At most `max_failures` failures per key within `window`."""

    max_failures: int
    window: datetime.timedelta


@dataclasses.dataclass(frozen=True, slots=True)
class LoginPolicy:
    """How logins are limited (OWASP ASVS 4.0.3 V2.2.1; docs/operations.md says why).

    - `pair`: failures per (account, client address); past it that address is refused
      for that account until the window has passed (a soft, local lockout);
    - `address`: failures per address whatever the account (password spraying);
    - past `account_ceiling` failures on one account within `pair.window`, from every
      address together, addresses the owner never logged in from (within `known_for`)
      are slowed down to one attempt per account per `slowdown`, never locked: a
      guesser gets at most about account_ceiling + 1 h / slowdown tries an hour, and
      the owner still logs in from a known address at once.
    """

    pair: RateLimit
    address: RateLimit
    account_ceiling: int
    slowdown: datetime.timedelta
    known_for: datetime.timedelta


_PAIR, _ADDRESS, _ACCOUNT, _SUCCESS = "login-pair", "login-address", "login-account", "login-success"


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

    def add(self, conn: Database, scope: str, key: str) -> str:
        """Record one failure (inside the caller's transaction); return its time (as stored)."""
        at = timestamps.to_text(timestamps.utc_now())
        conn.execute("INSERT INTO attempt (scope, key, at) VALUES (?, ?, ?)", (scope, key, at))
        return at

    def latest(self, scope: str, key: str) -> datetime.datetime | None:
        """When this key was last recorded, if ever."""
        row = self._conn.execute("SELECT MAX(at) FROM attempt WHERE scope = ? AND key = ?", (scope, key)).fetchone()
        return timestamps.from_text(row[0]) if row[0] is not None else None

    def check(self, limits: dict[tuple[str, str], RateLimit]) -> None:
        """TooManyAttempts if any of these keys is at its limit."""
        for (scope, key), limit in limits.items():
            if self.count(scope, key, limit.window) >= limit.max_failures:
                logger.info("rate limit reached for %s", scope)
                raise TooManyAttempts(f"too many failed attempts ({scope}); try again later", scope=scope)

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

    def begin_login(self, email: str, *, address: str, policy: LoginPolicy) -> LoginCheck | None:
        """First step of a login, in the database thread: limits, the attempt counted, the stored hash.

        The attempt is counted as a failure here, in the same transaction as the
        limits are checked, before any password is: simultaneous guesses are as many
        attempts, and those past a limit are refused without a check.  None for an
        email that cannot be one; TooManyAttempts when a limit is reached.
        """
        try:
            account = normalise_email(email)
        except ValueError:
            return None
        pair = f"{account} {address}"
        with transaction(self._conn) as conn:
            self._forget_old(conn, policy)
            self.attempts.check({(_PAIR, pair): policy.pair, (_ADDRESS, address): policy.address})
            self._slow_down(account, pair, policy)
            at = self.attempts.add(conn, _PAIR, pair)
            conn.execute("INSERT INTO attempt (scope, key, at) VALUES (?, ?, ?), (?, ?, ?)",
                         (_ADDRESS, address, at, _ACCOUNT, account, at))
        # a disabled account is answered like an unknown one
        row = self._conn.execute("SELECT id, email, display_name, password_hash FROM practitioner"
                                 " WHERE email = ? AND disabled = 0", (account,)).fetchone()
        if row is None:
            return LoginCheck(account, address, None, None, at)
        practitioner = Practitioner(id=row["id"], email=row["email"], display_name=row["display_name"])
        return LoginCheck(account, address, practitioner, row["password_hash"], at)

    def _forget_old(self, conn: Database, policy: LoginPolicy) -> None:
        """Drop attempts no window looks at any more, so failed logins cannot grow the table for ever."""
        now = timestamps.utc_now()
        counted = max(policy.pair.window, policy.address.window, datetime.timedelta(days=1))
        conn.execute("DELETE FROM attempt WHERE scope != ? AND at < ?", (_SUCCESS, timestamps.to_text(now - counted)))
        conn.execute("DELETE FROM attempt WHERE scope = ? AND at < ?", (_SUCCESS, timestamps.to_text(now - policy.known_for)))

    def _slow_down(self, account: str, pair: str, policy: LoginPolicy) -> None:
        """Past the account's ceiling, one attempt per `slowdown` from an address the owner never used."""
        if self.attempts.count(_ACCOUNT, account, policy.pair.window) < policy.account_ceiling:
            return
        if self.attempts.count(_SUCCESS, pair, policy.known_for) > 0:
            return  # the owner's known address: only its own (pair) limit applies
        latest = self.attempts.latest(_ACCOUNT, account)
        wait = (latest + policy.slowdown - timestamps.utc_now()).total_seconds() if latest else 0.0
        if wait > 0:
            logger.info("login slowed down for an account past its failure ceiling")
            raise TooManyAttempts("too many failed attempts on this account; try again later",
                                  retry_after=wait, scope="account")

    def check_password(self, check: LoginCheck, password: str) -> bool:
        """Second step, in any thread but the database's: argon2 (slow on purpose, releases the GIL)."""
        if check.password_hash is None:
            self._passwords.waste_time(password)  # unknown emails cost as much as known ones
            return False
        return self._passwords.verify(check.password_hash, password)

    def finish_login(self, check: LoginCheck, ok: bool, *, lifetime: datetime.timedelta,
                     previous_token: str | None = None) -> Login | None:
        """Last step, in the database thread: a failure stays counted; a success opens a new session.

        The session the browser came with is deleted (no fixation).  A success takes
        back its own attempt, clears its address's failures for the account (not the
        account's others) and makes that address known.
        """
        if not ok or check.practitioner is None:
            if check.practitioner is not None:
                logger.info("Practitioner(%s) failed password check", check.practitioner.id)
            return None
        practitioner = check.practitioner
        token = tokens.new_token()
        now = timestamps.utc_now()
        session = WebSession(practitioner, secrets.token_urlsafe(32), now + lifetime)
        pair = f"{check.account} {check.address}"
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
            conn.execute("DELETE FROM attempt WHERE ((scope = ? AND key = ?) OR (scope = ? AND key = ?)) AND at = ?",
                         (_ADDRESS, check.address, _ACCOUNT, check.account, check.attempt_at))
            conn.execute("DELETE FROM attempt WHERE scope IN (?, ?) AND key = ?", (_PAIR, _SUCCESS, pair))
            self.attempts.add(conn, _SUCCESS, pair)
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
