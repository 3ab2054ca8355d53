"""The operator's commands: practitioner accounts, the mail queue, the audit export and check."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
from typing import Any, TextIO

from clinic import AlreadyExists

from .config import Config


def add_commands(sub: Any) -> None:
    """Register the subcommands on the main parser's subparsers."""
    practitioner = sub.add_parser("practitioner", help="manage practitioner accounts")
    psub = practitioner.add_subparsers(dest="action", required=True)
    add = psub.add_parser("add", help="create a practitioner account (password prompted, or read from stdin)")
    add.add_argument("--config")
    add.add_argument("--email", required=True)
    add.add_argument("--name", required=True, help="name shown to colleagues")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from the first line of stdin instead of prompting")
    mail = sub.add_parser("mail", help="the mail queue")
    msub = mail.add_subparsers(dest="action", required=True)
    status = msub.add_parser("status", help="print the queue's state as JSON (ids and counters only)")
    status.add_argument("--config")
    status.add_argument("--limit", type=int, default=200)
    audit = sub.add_parser("audit", help="the audit log")
    asub = audit.add_subparsers(dest="action", required=True)
    export = asub.add_parser("export", help="write the whole audit log to stdout")
    export.add_argument("--config")
    export.add_argument("--format", choices=("csv", "jsonl"), default="jsonl")
    export.add_argument("--after", type=int, default=0, help="only entries after this sequence number")
    verify = asub.add_parser("verify", help="check the hash chain and the checkpoints; exit 1 if tampered")
    verify.add_argument("--config")


def _read_password(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.password_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Mot de passe / password: ")
    if first != getpass.getpass("Confirmer / confirm: "):
        raise ValueError("the two passwords differ")
    return first


async def _with_clinic(config: Config, work: Any) -> Any:
    from .app import open_clinic

    clinic = await open_clinic(config)
    try:
        return await work(clinic)
    finally:
        await clinic.close()


def run(args: argparse.Namespace, config: Config, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    """Run one operator command; returns the exit status."""
    if args.command == "practitioner":
        try:
            password = _read_password(args, stdin)
            if len(password) < 10:
                raise ValueError("the password must have at least 10 characters")
            practitioner = asyncio.run(_with_clinic(
                config, lambda c: c.add_practitioner(args.email, password, args.name)))
        except (ValueError, AlreadyExists) as exc:
            print(f"teleconsult: {exc}", file=sys.stderr)
            return 1
        print(f"practitioner {practitioner.id} created", file=out)
        return 0
    if args.command == "mail":
        messages = asyncio.run(_with_clinic(config, lambda c: c.practice.mail_recent(args.limit)))
        counts = {s: sum(1 for m in messages if m.state == s) for s in ("queued", "sent", "failed")}
        print(json.dumps({"counts": counts, "messages": [m.status_json() for m in messages]}, indent=2), file=out)
        return 0
    if args.action == "verify":
        return _verify(config, out)
    return _export(args, config, out)


def _verify(config: Config, out: TextIO) -> int:
    try:
        verdict = asyncio.run(_with_clinic(config, lambda c: c.practice.audit_verify(config.audit_checkpoints_path)))
    except ValueError as exc:
        print(f"teleconsult: audit checkpoints: {exc}", file=sys.stderr)
        return 2
    if verdict.ok:
        print(f"audit log intact: {verdict.checked} entries, head {verdict.head_seq}", file=out)
        return 0
    print(f"audit log TAMPERED: {verdict.problem}", file=out)
    return 1


def _export(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    from clinic.audit import FIELDS

    async def work(clinic: Any) -> None:
        writer = csv.DictWriter(out, fieldnames=FIELDS) if args.format == "csv" else None
        if writer is not None:
            writer.writeheader()
        after = args.after
        while True:
            batch = await clinic.practice.audit_export(after, 1000)
            if not batch:
                return
            for event in batch:
                row = event.as_json()
                if writer is not None:
                    writer.writerow(row)
                else:
                    out.write(json.dumps(row) + "\n")
            after = batch[-1].seq

    asyncio.run(_with_clinic(config, work))
    return 0
