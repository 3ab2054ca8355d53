"""requirements.lock installs on every Python the deployment guide names.

`scripts/setup` installs the lock with `--require-hashes`: pip then refuses any
dependency the lock does not pin. The lock was compiled on one Python; a
dependency that only some Python versions need (an environment marker) is
missing from it, and setup fails on those. Debian 12's python3 is 3.11.2, and
redis needs async-timeout below 3.11.3 (found 2026-12-06: docs/operations.md's
fresh-VM steps failed at step 2).

The check walks teleconsult's dependencies from the installed packages' metadata
(the venv is installed from the lock) under each Python's markers, and wants
every dependency met by a pinned version.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# Debian 12's python3 (docs/operations.md), the oldest 3.11 the lock must serve, and the newest 3.11
PYTHONS = ["3.11.2", "3.11.0", "3.11.14"]


def locked() -> dict[str, tuple[str, str]]:
    """name -> (version, marker text or "") for every pin in requirements.lock."""
    pins: dict[str, tuple[str, str]] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;([^\\]*))?", line)
        if m:
            pins[canonicalize_name(m[1])] = (m[2], (m[3] or "").strip())
    return pins


def environment(python: str) -> dict[str, str]:
    env = dict(default_environment())
    env.update(python_full_version=python, python_version=".".join(python.split(".")[:2]),
               implementation_version=python, sys_platform="linux", platform_system="Linux",
               os_name="posix", platform_machine="x86_64", implementation_name="cpython",
               platform_python_implementation="CPython")
    return env


def unmet(python: str, pins: dict[str, tuple[str, str]]) -> list[str]:
    """What teleconsult (with its test extra) needs under `python` that the lock does not pin."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    roots = [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]
    env = environment(python)
    todo: list[tuple[Requirement, str]] = [(r, "teleconsult") for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    problems: list[str] = []
    while todo:
        req, needed_by = todo.pop()
        if req.marker is not None and not req.marker.evaluate(env):
            continue
        name = canonicalize_name(req.name)
        pin = pins.get(name)
        if pin is None:
            problems.append(f"{req} (needed by {needed_by}) is not in requirements.lock")
            continue
        version, marker = pin
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req} (needed by {needed_by}) is not met by the pinned {name}=={version}")
        if marker and not Requirement(f"{name}; {marker}").marker.evaluate(env):  # type: ignore[union-attr]
            problems.append(f"{name}=={version} is pinned only for `{marker}`, but {needed_by} needs it")
        key = (name, frozenset(req.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            # pinned for other Pythons than this one (its marker): its own dependencies go unchecked
            # (async-timeout has none)
            assert marker, name
            continue
        for text in requires:
            sub = Requirement(text)
            if sub.marker is None or sub.marker.evaluate(env) or any(
                    sub.marker.evaluate({**env, "extra": extra}) for extra in req.extras):
                if sub.marker is not None:
                    sub = Requirement(re.sub(r";.*", "", text))  # its marker held: drop it
                todo.append((sub, name))
    return problems


def test_the_venv_holds_what_the_lock_pins() -> None:
    # the walk reads the installed packages' metadata: it must be the locked versions'
    pins = locked()
    assert len(pins) > 40
    differ = []
    for name, (version, marker) in pins.items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            if marker:  # pinned for other Pythons only
                continue
            raise
        if installed != version:
            differ.append(f"{name}: installed {installed}, locked {version}")
    assert differ == []


@pytest.mark.parametrize("python", PYTHONS)
def test_the_lock_pins_everything_each_python_needs(python: str) -> None:
    assert unmet(python, locked()) == []


def test_the_check_sees_a_dependency_a_python_needs_and_the_lock_lacks() -> None:
    pins = locked()
    del pins["async-timeout"]
    assert unmet("3.11.2", pins) == [
        "async-timeout>=4.0.3 (needed by redis) is not in requirements.lock"]
    assert unmet("3.11.7", pins) == []
