"""The operator's commands as real processes: practitioner add, mail status, audit export."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from helpers.practice import Browserless
from helpers.server import running_server

CLI = [sys.executable, "-m", "signaling.cli", "--log-level", "WARNING"]


def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n')
    return path


def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, timeout=60, check=False)


def test_practitioner_add_reads_the_password_from_stdin_never_from_argv(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    secret = "a long secret password"
    result = run("practitioner", "add", "--config", config, "--email", "Dr.New@Example.org", "--name", "Dr New",
                 "--password-stdin", stdin=secret + "\n")
    assert result.returncode == 0, result.stderr
    assert "created" in result.stdout and secret not in result.stdout + result.stderr
    # the same email again, and a short password: clear refusals
    again = run("practitioner", "add", "--config", config, "--email", "dr.new@example.org", "--name", "X",
                "--password-stdin", stdin=secret + "\n")
    assert again.returncode == 1 and "already exists" in again.stderr and "Traceback" not in again.stderr
    short = run("practitioner", "add", "--config", config, "--email", "b@example.org", "--name", "B",
                "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "at least 10" in short.stderr
    # there is no way to pass the password as an argument
    argv = run("practitioner", "add", "--config", config, "--email", "c@example.org", "--name", "C",
               "--password", secret)
    assert argv.returncode == 2


async def test_the_new_account_logs_in_and_the_audit_export_has_it(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    assert run("practitioner", "add", "--config", config, "--email", "a@example.org", "--name", "Dr A",
               "--password-stdin", stdin="a long secret password\n").returncode == 0
    async with running_server(tmp_path / "data") as server:
        c = Browserless(server.base_url)
        try:
            response = await c.login("a@example.org", "a long secret password")
            assert response.status == 303
        finally:
            await c.close()
        await server.clinic.practice.audit("practitioner", "x", "record.view", patient_id="p")
    lines = run("audit", "export", "--config", config).stdout.splitlines()
    events = [json.loads(line) for line in lines]
    assert [e["action"] for e in events] == ["login", "record.view"]
    assert events[0]["seq"] < events[1]["seq"] and events[0]["at"].endswith("+00:00")
    rows = list(csv.DictReader(io.StringIO(run("audit", "export", "--config", config, "--format", "csv").stdout)))
    assert [r["action"] for r in rows] == ["login", "record.view"] and rows[1]["patient_id"] == "p"
    after = run("audit", "export", "--config", config, "--after", str(events[0]["seq"])).stdout.splitlines()
    assert len(after) == 1
    status = json.loads(run("mail", "status", "--config", config).stdout)
    assert status == {"counts": {"queued": 0, "sent": 0, "failed": 0}, "messages": []}
