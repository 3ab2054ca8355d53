"""The `teleconsult` command: serve, demo, check-config, and the operator's commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Sequence

from clinic import ClinicError
from clinic.datafiles import PRIVATE_UMASK
from cluster import ClusterError

from . import database_commands, operator_commands
from .accesslog import RedactingAccessLogger
from .config import Config, load_config
from .errors import ConfigError
from .logformat import configure_logging


def _demo(config: Config, as_json: bool) -> int:
    from .app import open_clinic

    async def run() -> dict[str, object]:
        clinic = await open_clinic(config)
        try:
            demo = await clinic.ensure_demo(config.http.public_url, config.data_path)
        finally:
            await clinic.close()
        return demo.as_json()

    data = asyncio.run(run())
    if as_json:
        print(json.dumps(data))
    else:
        practitioner = data["practitioner"]
        assert isinstance(practitioner, dict)
        print("Cabinet de démonstration / demo practice")
        print(f"  praticien / practitioner : {practitioner['email']}  mot de passe / password : {practitioner['password']}")
        print(f"  lien praticien / practitioner link : {data['practitioner_link']}")
        print(f"  lien patient / patient link        : {data['patient_link']}")
    return 0


def _serve(config: Config, demo: bool) -> int:
    from aiohttp import web

    from .allocator import pin_malloc_thresholds
    from .app import make_app

    # before anything big is allocated: glibc's moving thresholds let the heap creep for ever
    pin_malloc_thresholds()
    # every file this process creates (database, documents, recordings, emails) is private
    os.umask(PRIVATE_UMASK)
    if demo:
        _demo(config, as_json=False)
    print(f"Teleconsult: {config.http.public_url} (listening on {config.http.host}:{config.http.port})", flush=True)
    try:
        web.run_app(make_app(config), host=config.http.host, port=config.http.port, print=None,
                    handle_signals=True, shutdown_timeout=5, access_log_class=RedactingAccessLogger,
                    loop=new_event_loop(config.media.event_loop))
    except (ClinicError, ClusterError) as exc:  # e.g. PostgreSQL or Redis unreachable at start
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 1
    return 0


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The server's event loop: uvloop's (libuv: the media path's socket callbacks cost less) or asyncio's."""
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="teleconsult", description="Self-hosted video teleconsultation.")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING (default INFO)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the server")
    serve.add_argument("--config", help="path to config.toml (default: built-in defaults)")
    serve.add_argument("--demo", action="store_true", help="also create a demo consultation and print its links")
    demo = sub.add_parser("demo", help="create (or reuse) a demo practice and print its links")
    demo.add_argument("--config")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    check = sub.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("--config", required=True)
    operator_commands.add_commands(sub)
    database_commands.add_commands(sub)
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"teleconsult: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, config.logging.format)
    if args.command == "check-config":
        if not database_commands.check_database(config, sys.stdout):
            return 1
        print(f"{args.config}: ok")
        return 0
    if args.command in database_commands.COMMANDS:
        return database_commands.run(args, config)
    if args.command == "demo":
        return _demo(config, args.json)
    if args.command in ("practitioner", "mail", "audit", "init", "keys", "patient"):
        return operator_commands.run(args, config)
    return _serve(config, args.demo)


if __name__ == "__main__":
    sys.exit(main())
