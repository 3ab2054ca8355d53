"""The operator's database commands: migrate, copy-database, and check-config's PostgreSQL and Redis test."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from clinic import ClinicError

from .config import Config

#: The subcommands this module runs.
COMMANDS = ("migrate", "copy-database")


def add_commands(sub: Any) -> None:
    """Register the subcommands on the main parser's subparsers."""
    migrate = sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    migrate.add_argument("--config")
    copy = sub.add_parser(
        "copy-database",
        help="copy every row of a SQLite database into the (empty) PostgreSQL of [database] url",
    )
    copy.add_argument("--config", required=True)
    copy.add_argument("--from", dest="source", metavar="PATH",
                      help="the SQLite file to copy (default: teleconsult.sqlite3 in data_dir)")


def sqlite_path(config: Config) -> Path:
    """Where the embedded SQLite database lives."""
    from .app import DB_FILE

    return config.data_path / DB_FILE


def _migrate(config: Config, out: TextIO) -> int:
    from clinic.engines import open_database
    from clinic.migrations import MIGRATIONS, migrate, schema_version

    def work() -> tuple[int, int]:
        with contextlib.closing(open_database(config.database.url or sqlite_path(config))) as db:
            return migrate(db), schema_version(db)

    applied, version = work()
    print(f"schema version {version} of {len(MIGRATIONS)} ({applied} migrations applied)", file=out)
    return 0


def _copy(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    from clinic.copier import copy_database
    from clinic.database import connect
    from clinic.engines import open_database

    if not config.database.url:
        raise ClinicError("set [database] url to the PostgreSQL to copy into")
    source_path = Path(args.source) if args.source else sqlite_path(config)
    if not source_path.is_file():
        raise ClinicError(f"no SQLite database at {source_path}")
    with contextlib.closing(connect(source_path)) as source, \
            contextlib.closing(open_database(config.database.url)) as target:
        copied = copy_database(source, target)
    # counts only: never a row's content
    print(json.dumps({"copied": copied, "rows": sum(copied.values())}, indent=2), file=out)
    return 0


def run(args: argparse.Namespace, config: Config, out: TextIO | None = None) -> int:
    """Run one database command; returns the exit status."""
    out = out or sys.stdout  # looked up now: tests replace sys.stdout
    try:
        if args.command == "migrate":
            return _migrate(config, out)
        return _copy(args, config, out)
    except ClinicError as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 1


def check_database(config: Config, out: TextIO) -> bool:
    """check-config's test: can this node reach its PostgreSQL and Redis?  True when fine (or none is set)."""
    ok = True
    if config.database.url:
        from clinic.postgres import probe, where

        try:
            version = probe(config.database.url)
        except ClinicError as exc:
            print(f"teleconsult: {exc}", file=sys.stderr)
            ok = False
        else:
            print(f"PostgreSQL at {where(config.database.url)}: reachable (server {version})", file=out)
    if config.cluster.redis_url:
        from cluster import ClusterError
        from cluster.probe import probe as probe_redis
        from cluster.probe import where as redis_where

        try:
            version = asyncio.run(probe_redis(config.cluster.redis_url))
        except ClusterError as exc:
            print(f"teleconsult: {exc}", file=sys.stderr)
            ok = False
        else:
            print(f"Redis at {redis_where(config.cluster.redis_url)}: reachable (server {version})", file=out)
    return ok
