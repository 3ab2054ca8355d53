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
    assert status == {"counts": {"queued": 0, "sent": 0, "failed": 0, "withdrawn": 0}, "messages": []}


async def test_init_then_disable_enable_and_reset_end_sessions_at_once(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    old, new = "the first password", "the second password"
    first = run("init", "--config", config, "--email", "first@example.org", "--name", "Dr First",
                "--password-stdin", stdin=old + "\n")
    assert first.returncode == 0, first.stderr
    assert "configuration ok" in first.stdout and "created" in first.stdout and (tmp_path / "data").is_dir()
    again = run("init", "--config", config, "--password-stdin", stdin=old + "\n")
    assert again.returncode == 0 and "already exist" in again.stdout  # nothing seeded twice, no demo
    async with running_server(tmp_path / "data") as server:
        assert await server.clinic.find_practitioner("demo@teleconsult.invalid") is None
        browser = Browserless(server.base_url)
        try:
            assert (await browser.login("first@example.org", old)).status == 303
            assert (await browser.get("/"))[0].status == 200

            assert run("practitioner", "disable", "--config", config, "--email", "first@example.org").returncode == 0
            response, _ = await browser.get("/", allow_redirects=False)
            assert response.status == 303  # the open session ended at once
            assert (await browser.login("first@example.org", old)).status == 401

            assert run("practitioner", "enable", "--config", config, "--email", "first@example.org").returncode == 0
            assert (await browser.login("first@example.org", old)).status == 303

            reset = run("practitioner", "reset-password", "--config", config, "--email", "first@example.org",
                        "--password-stdin", stdin=new + "\n")
            assert reset.returncode == 0 and "1 session(s) ended" in reset.stdout, reset.stdout + reset.stderr
            assert (await browser.get("/", allow_redirects=False))[0].status == 303
            assert (await browser.login("first@example.org", old)).status == 401
            assert (await browser.login("first@example.org", new)).status == 303
            unknown = run("practitioner", "disable", "--config", config, "--email", "nobody@example.org")
            assert unknown.returncode == 1 and "no practitioner" in unknown.stderr and "Traceback" not in unknown.stderr
        finally:
            await browser.close()


async def test_a_practitioner_changes_their_password_and_their_other_sessions_end(tmp_path: Path) -> None:
    old, new = "the first password", "a brand new password"
    async with running_server(tmp_path / "data") as server:
        await server.clinic.add_practitioner("me@example.org", old, "Dr Me")
        laptop, phone = Browserless(server.base_url), Browserless(server.base_url)
        try:
            for browser in (laptop, phone):
                assert (await browser.login("me@example.org", old)).status == 303
            response, page = await laptop.get("/account/password")
            assert response.status == 200 and 'data-testid="account-form"' in page
            wrong, _ = await laptop.post("/account/password", {"old": "not it at all", "new": new, "confirm": new},
                                         csrf_from="/account/password")
            assert wrong.status == 403
            short, _ = await laptop.post("/account/password", {"old": old, "new": "short", "confirm": "short"},
                                         csrf_from="/account/password")
            assert short.status == 400
            no_csrf, _ = await laptop.post("/account/password", {"old": old, "new": new, "confirm": new})
            assert no_csrf.status == 403  # CSRF protected like every form
            assert (await phone.get("/"))[0].status == 200  # nothing changed yet
            done, page = await laptop.post("/account/password", {"old": old, "new": new, "confirm": new},
                                           csrf_from="/account/password")
            assert done.status == 200 and 'data-testid="form-notice"' in page
            assert (await laptop.get("/"))[0].status == 200  # this session stays
            assert (await phone.get("/"))[0].status == 303  # the other one ended
            assert (await phone.login("me@example.org", old)).status == 401
            assert (await phone.login("me@example.org", new)).status == 303
        finally:
            await laptop.close()
            await phone.close()
