"""axe-core, the accessibility checker, for the browser tests only (never served by the product).

Not committed (553 KB minified): fetched once from the npm registry with `npm pack` at a pinned
version, checked against a pinned SHA-256, and kept in a per-user cache shared by every checkout
(`scripts/test` fetches it before the suite enters its loopback-only network namespace;
`python tests/helpers/axe.py` does the same by hand).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from playwright.async_api import Page

VERSION = "4.10.3"
TARBALL_SHA256 = "0f2b4d7dcdf7d1219df8d1959ad68e565f51d14c3f0d88bb71cd59abeb956292"
SCRIPT_SHA256 = "880970c081707360e64f34cea25ff91892f5bc95675b0776925b9709dd8a68bb"
BLOCKING = ("serious", "critical")
REGISTRY_URL = f"https://registry.npmjs.org/axe-core/-/axe-core-{VERSION}.tgz"


def cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return root / "teleconsult-tests" / f"axe-core-{VERSION}" / "axe.min.js"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch() -> Path:
    """Download the pinned tarball with npm, check both hashes, keep axe.min.js in the cache."""
    target = cache_path()
    if target.exists() and _sha256(target.read_bytes()) == SCRIPT_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / f"axe-core-{VERSION}.tgz"
        if shutil.which("npm"):
            subprocess.run(["npm", "pack", f"axe-core@{VERSION}", "--pack-destination", tmp, "--silent"],
                           check=True, capture_output=True, timeout=120)
        else:  # the same tarball, straight from the registry (the hash below decides)
            with urllib.request.urlopen(REGISTRY_URL, timeout=120) as response:
                tarball.write_bytes(response.read())
        if _sha256(tarball.read_bytes()) != TARBALL_SHA256:
            raise RuntimeError(f"axe-core {VERSION}: the registry's tarball does not match the pinned SHA-256")
        with tarfile.open(tarball) as tar:
            member = tar.extractfile("package/axe.min.js")
            assert member is not None
            script = member.read()
    if _sha256(script) != SCRIPT_SHA256:
        raise RuntimeError(f"axe-core {VERSION}: axe.min.js does not match the pinned SHA-256")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".part")
    partial.write_bytes(script)
    partial.replace(target)
    return target


def source() -> str:
    """axe.min.js, checked; fetched first if the cache lacks it (which needs the npm registry)."""
    path = cache_path()
    if not path.exists():
        try:
            fetch()
        except (OSError, subprocess.SubprocessError) as exc:
            raise AssertionError(f"axe-core {VERSION} is not in {path} and could not be fetched ({exc});"
                                 " run `python tests/helpers/axe.py` where the npm registry is reachable") from exc
    data = path.read_bytes()
    assert _sha256(data) == SCRIPT_SHA256, f"{path} is not axe-core {VERSION}: delete it and fetch again"
    return data.decode()


RUN = """async () => {
  // no CSSOM preload: it parses the stylesheets through inline <style> elements, which the CSP (rightly) blocks
  const result = await axe.run(document, {resultTypes: ["violations"], preload: false});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
}"""


async def violations(page: Page, script: str) -> list[dict[str, Any]]:
    """Every axe violation on the page as it is now (axe is evaluated in, not added as a <script>: CSP)."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(script)
    found: list[dict[str, Any]] = await page.evaluate(RUN)
    return found


def blocking(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in found if v["impact"] in BLOCKING]


if __name__ == "__main__":
    print(fetch())
