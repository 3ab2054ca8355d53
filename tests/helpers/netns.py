"""Changing the test's own network namespace (addresses, nftables): only ever the loopback-only one."""

from __future__ import annotations

import subprocess

import pytest


def run(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(args, input=stdin, capture_output=True, text=True, check=True).stdout


def require_loopback_only_namespace() -> None:
    """Skip unless this process runs where `lo` is the only interface: never touch the host's network."""
    links = [line.split(":")[1].strip() for line in run("ip", "-o", "link").splitlines()]
    if links != ["lo"]:
        pytest.skip("needs the loopback-only network namespace (run through scripts/test or unshare --net)")


def counters(table: str) -> list[int]:
    """Packets counted by each `counter` rule of an nftables table, in order."""
    text = run("nft", "list", "table", "ip", table)
    return [int(line.split("counter packets ")[1].split()[0]) for line in text.splitlines() if "counter packets" in line]
