"""PostgreSQL as the clinic database (`[database] url = "postgresql://…"`), with psycopg 3.

Why psycopg 3 (sync API + psycopg_pool) rather than asyncpg: the clinic already runs
every database call in its own worker thread (clinic/clinic.py), with domain modules
written against a DB-API connection.  psycopg 3 is that same API, so the very same
module code runs on SQLite and PostgreSQL; asyncpg would need a second, async copy of
every query.  The pool hands each statement (or transaction) a healthy connection,
replacing ones a server restart broke, and its size bounds what one node holds open.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

import psycopg
import psycopg.conninfo
import psycopg_pool

from .database import BUSY_TIMEOUT_MS, Cursor, Database, Dialect
from .errors import ConstraintViolated, DatabaseUnavailable

logger = logging.getLogger(__name__)

#: Seconds to wait for the server when connecting.
CONNECT_TIMEOUT_S: Final = 5
#: Connections one node keeps at most (the clinic's worker uses one at a time).
POOL_MAX: Final = 4
#: The advisory lock every write transaction takes: writers take turns, as on SQLite.
WRITE_LOCK: Final = 0x7E1EC0
#: Where the schema version lives (SQLite keeps it in PRAGMA user_version).
VERSION_TABLE: Final = "teleconsult_schema"


def where(url: str) -> str:
    """host:port/dbname of a URL, for messages (never the password)."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an invalid PostgreSQL URL"
    host = parts.get("host") or "localhost"
    return f"{host}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def to_pyformat(sql: str) -> str:
    """Rewrite `?` placeholders as psycopg's `%s` (and a literal `%` as `%%`)."""
    out: list[str] = []
    quoted = False
    for char in sql:
        if char == "'":
            quoted = not quoted
        if char == "%":
            out.append("%%")  # psycopg reads % everywhere, even inside literals
        elif char == "?" and not quoted:
            out.append("%s")
        else:
            out.append(char)
    return "".join(out)


def _is_read(sql: str) -> bool:
    return sql.lstrip()[:6].upper() == "SELECT"


def _bind(params: Sequence[Any]) -> tuple[Any, ...]:
    # the schema stores flags as INTEGER 0/1 (as SQLite does); psycopg would send a boolean
    return tuple(int(p) if isinstance(p, bool) else p for p in params)


class PgRow:
    """A row readable by position or by column name, like sqlite3.Row."""

    __slots__ = ("_names", "_values")

    def __init__(self, values: Sequence[Any], names: dict[str, int]) -> None:
        self._values = values
        self._names = names

    def __getitem__(self, key: int | str, /) -> Any:
        return self._values[self._names[key] if isinstance(key, str) else key]

    def keys(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)


def _row_factory(cursor: Any) -> Any:
    names = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: PgRow(values, names)


class _Result:
    """A statement's rows, read before its connection went back to the pool."""

    def __init__(self, rows: list[PgRow], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> PgRow | None:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[PgRow]:
        rest, self._next = self._rows[self._next:], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[PgRow]:
        return iter(self.fetchall())


def _configure(conn: psycopg.Connection[Any]) -> None:
    # a writer waits for the write lock as long as SQLite's busy_timeout, then fails
    conn.execute(f"SET lock_timeout = {BUSY_TIMEOUT_MS:d}")


def probe(url: str) -> str:
    """Connect once and return the server version; DatabaseUnavailable if that fails."""
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            version = conn.execute("SHOW server_version").fetchone()
    except psycopg.Error as exc:
        raise DatabaseUnavailable(f"cannot use PostgreSQL at {where(url)}: {exc}".strip()) from exc
    return str(version[0]) if version else "unknown"


class PostgresDatabase(Database):
    """A pool of connections to one PostgreSQL database, in autocommit outside transactions."""

    dialect: Dialect = "postgresql"

    def __init__(self, url: str) -> None:
        # one direct try first: its error says why (auth, unknown db, no server)
        probe(url)
        self._local = threading.local()
        self._pool: psycopg_pool.ConnectionPool[Any] = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=POOL_MAX,
            open=False,
            kwargs={"autocommit": True, "row_factory": _row_factory,
                    "connect_timeout": CONNECT_TIMEOUT_S},
            configure=_configure,
            name="clinic",
            timeout=CONNECT_TIMEOUT_S,
        )
        try:
            self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
        except psycopg_pool.PoolTimeout as exc:
            self._pool.close()
            raise DatabaseUnavailable(f"cannot open a connection pool to {where(url)}") from exc
        self._where = where(url)
        logger.info("PostgreSQL database at %s", self._where)

    @property
    def in_transaction(self) -> bool:
        return getattr(self._local, "conn", None) is not None

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The open transaction's connection, else one borrowed for this statement."""
        current: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if current is not None:
            yield current
            return
        with self._pool.connection() as conn:
            yield conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        # a read outside a transaction is retried on another connection when the server
        # dropped ours (a restart leaves every idle pooled connection dead); a write is not:
        # it may have been applied
        retries = POOL_MAX if getattr(self._local, "conn", None) is None and _is_read(sql) else 0
        for attempt in range(retries + 1):
            try:
                return self._execute(sql, params)
            except psycopg.OperationalError:
                if attempt == retries:
                    raise
                logger.warning("PostgreSQL connection lost; reading again on another connection")
        raise AssertionError("unreachable")

    def _execute(self, sql: str, params: Sequence[Any]) -> Cursor:
        with self._connection() as conn:
            try:
                cursor = conn.execute(to_pyformat(sql), _bind(params))
            except psycopg.errors.IntegrityError as exc:
                raise ConstraintViolated(str(exc)) from exc
            rows = cursor.fetchall() if cursor.description is not None else []
            return _Result(rows, cursor.rowcount)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._connection() as conn:
            try:
                conn.cursor().executemany(to_pyformat(sql), [_bind(row) for row in rows])
            except psycopg.errors.IntegrityError as exc:
                raise ConstraintViolated(str(exc)) from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        if getattr(self._local, "conn", None) is not None:
            raise RuntimeError("transactions do not nest")
        with self._pool.connection() as conn, conn.transaction():
            # READ COMMITTED plus one writer at a time = SQLite's BEGIN IMMEDIATE:
            # a transaction's reads see every earlier commit and no other write can interleave
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
            self._local.conn = conn
            try:
                yield self
            finally:
                self._local.conn = None

    def run_script(self, script: str) -> None:
        with self._connection() as conn:
            # no parameters: sent as one simple query, several statements allowed
            conn.execute(script.encode())

    def tables(self) -> list[str]:
        rows = self.execute(
            "SELECT c.relname FROM pg_class c WHERE c.relkind = 'r'"
            " AND c.relnamespace = current_schema()::regnamespace AND c.relname <> ?"
            " ORDER BY c.oid",
            (VERSION_TABLE,),
        ).fetchall()
        return [str(row[0]) for row in rows]

    def close(self) -> None:
        self._pool.close()
