"""The operator's commands: practitioner accounts, the mail queue, the audit export and check."""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from clinic import AlreadyExists, NotFound
from clinic.mail import STATES
from sealing import generate_key

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
    reset = psub.add_parser("reset-password", help="set a new password (prompted, or stdin); every session ends")
    reset.add_argument("--config")
    reset.add_argument("--email", required=True)
    reset.add_argument("--password-stdin", action="store_true")
    for action, text in (("disable", "refuse logins and end every session at once"), ("enable", "allow logins again")):
        toggle = psub.add_parser(action, help=text)
        toggle.add_argument("--config")
        toggle.add_argument("--email", required=True)
    init = sub.add_parser("init", help="production set-up: check the config, create the data directory "
                                       "and the first practitioner (no demo data)")
    init.add_argument("--config", required=True)
    init.add_argument("--email", help="the first practitioner's email (prompted when missing)")
    init.add_argument("--name", help="their name shown to colleagues (prompted when missing)")
    init.add_argument("--password-stdin", action="store_true")
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
    patient = sub.add_parser("patient", help="a patient's record (the right to erasure)")
    patsub = patient.add_subparsers(dest="action", required=True)
    erase = patsub.add_parser("erase", help="erase a record and its files, once the legal retention has passed")
    erase.add_argument("--config")
    erase.add_argument("--patient", required=True, help="the record's id (shown on its page address)")
    keys = sub.add_parser("keys", help="the key file sealing stored files (docs/encryption.md)")
    ksub = keys.add_subparsers(dest="action", required=True)
    new = ksub.add_parser("new", help="create a key file with one key (refused if the file exists)")
    new.add_argument("--file", required=True)
    new.add_argument("--config")
    rotate = ksub.add_parser("rotate", help="add a key to [storage] key_file, then re-seal every stored file with it")
    rotate.add_argument("--config", required=True)
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


def _new_password(args: argparse.Namespace, stdin: TextIO) -> str:
    password = _read_password(args, stdin)
    if len(password) < 10:
        raise ValueError("the password must have at least 10 characters")
    return password


def _practitioner(args: argparse.Namespace, config: Config, out: TextIO, stdin: TextIO) -> int:
    try:
        if args.action == "add":
            password = _new_password(args, stdin)
            practitioner = asyncio.run(_with_clinic(
                config, lambda c: c.add_practitioner(args.email, password, args.name)))
            print(f"practitioner {practitioner.id} created", file=out)
        elif args.action == "reset-password":
            password = _new_password(args, stdin)
            pid, ended = asyncio.run(_with_clinic(
                config, lambda c: c.practice.reset_practitioner_password(args.email, password)))
            print(f"practitioner {pid}: password reset, {ended} session(s) ended", file=out)
        else:
            disabled = args.action == "disable"
            pid, ended = asyncio.run(_with_clinic(
                config, lambda c: c.practice.set_practitioner_disabled(args.email, disabled)))
            print(f"practitioner {pid} {args.action}d" + (f", {ended} session(s) ended" if disabled else ""), file=out)
    except (ValueError, AlreadyExists, NotFound) as exc:
        print(f"teleconsult: {exc}", file=sys.stderr)
        return 1
    return 0


def _init(args: argparse.Namespace, config: Config, out: TextIO, stdin: TextIO) -> int:
    """Create the data directory and the first practitioner; seeds nothing else."""
    try:
        config.data_path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"teleconsult: cannot create the data directory {config.data_path}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"{args.config}: configuration ok; data directory {config.data_path}", file=out)
    count = asyncio.run(_with_clinic(config, lambda c: c.practice.practitioner_count()))
    if count:
        print(f"{count} practitioner account(s) already exist: nothing created", file=out)
        return 0
    if args.password_stdin:
        email, name = args.email, args.name
    else:
        email = args.email or input("E-mail du premier praticien / first practitioner's email: ").strip()
        name = args.name or input("Nom affiché / name shown: ").strip()
    if not email or not name:
        print("teleconsult: init needs the first practitioner's email and name", file=sys.stderr)
        return 1
    args.action = "add"
    args.email, args.name = email, name
    status = _practitioner(args, config, out, stdin)
    if status == 0:
        print(f"Next: teleconsult serve --config {args.config}  (or the systemd unit, docs/operations.md)", file=out)
    return status


def run(args: argparse.Namespace, config: Config, out: TextIO = sys.stdout, stdin: TextIO = sys.stdin) -> int:
    """Run one operator command; returns the exit status."""
    if args.command == "practitioner":
        return _practitioner(args, config, out, stdin)
    if args.command == "init":
        return _init(args, config, out, stdin)
    if args.command == "mail":
        messages = asyncio.run(_with_clinic(config, lambda c: c.practice.mail_recent(args.limit)))
        counts = {s: sum(1 for m in messages if m.state == s) for s in STATES}
        print(json.dumps({"counts": counts, "messages": [m.status_json() for m in messages]}, indent=2), file=out)
        return 0
    if args.command == "keys":
        return _keys(args, config, out)
    if args.command == "patient":
        return _erase(args, config, out)
    if args.action == "verify":
        return _verify(config, out)
    return _export(args, config, out)


def _erase(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    from clinic.record_export import ErasureRefused

    async def work(clinic: Any) -> int:
        n: int = await clinic.erase_patient(args.patient, config.retention.record_days, config.data_path)
        return n

    try:
        n = asyncio.run(_with_clinic(config, work))
    except ErasureRefused as exc:
        print(f"teleconsult: refused: the record is kept until {exc.until.isoformat()} "
              f"([retention] record_days = {config.retention.record_days})", file=sys.stderr)
        return 1
    except NotFound:
        print("teleconsult: no such patient", file=sys.stderr)
        return 1
    print(f"patient {args.patient} erased ({n} consultation(s)); the audit log keeps an entry", file=out)
    return 0


def _keys(args: argparse.Namespace, config: Config, out: TextIO) -> int:
    from .key_rotation import rotate

    if args.action == "new":
        path = Path(args.file)
        if path.exists():
            print(f"teleconsult: {path} exists already; use `keys rotate` to add a key", file=sys.stderr)
            return 1
        key_id = generate_key(path)
        print(f"key file {path} created with key {key_id}; name it in [storage] key_file", file=out)
        return 0
    if config.key_path is None:
        print("teleconsult: [storage] key_file is not set; create one with `teleconsult keys new --file PATH`",
              file=sys.stderr)
        return 1
    key_id, done = rotate(config.key_path, config.data_path)
    print(f"key {key_id} now seals new files; {done.files} re-sealed, {done.skipped} already sealed with it, "
          f"{done.failed} failed", file=out)
    return 1 if done.failed else 0


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
