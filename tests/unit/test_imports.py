"""The packages import each other one way only, and no module imports another in a circle."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers.imports import cycles, import_graph

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("sfu", "recorder", "signaling", "clinic", "sealing", "web")
# shared/ARCHITECTURE.md: what each package may never import
FORBIDDEN = {
    "sfu": {"clinic", "signaling"},
    "recorder": {"clinic", "signaling"},
    "clinic": {"aiohttp", "aiortc", "aioice", "signaling", "sfu", "recorder"},
    # encryption at rest, used by clinic/ and recorder/ alike: it depends on none of the project
    "sealing": {"aiohttp", "aiortc", "aioice", "signaling", "sfu", "recorder", "clinic"},
}


def test_no_module_imports_another_in_a_circle() -> None:
    graph, _ = import_graph(ROOT, PACKAGES)
    assert len(graph) > 80  # the walk really read the packages
    assert cycles(graph) == []


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_imports_point_the_way_the_architecture_says(package: str) -> None:
    _, external = import_graph(ROOT, PACKAGES)
    broken = {module: sorted(names & FORBIDDEN[package])
              for module, names in external.items()
              if module.split(".")[0] == package and names & FORBIDDEN[package]}
    assert broken == {}


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_the_checker_finds_a_cycle_even_under_type_checking(tmp_path: Path) -> None:
    _write(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from .b import B\n",
        "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import C\nclass B: ...\n",
        "pkg/c.py": "def f():\n    from pkg import a\n",
        "pkg/leaf.py": "import json\n",
    })
    graph, _ = import_graph(tmp_path, ["pkg"])
    assert cycles(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    # and it is quiet once the circle is broken
    _write(tmp_path, {"pkg/c.py": "import pkg.leaf\n"})
    graph, _ = import_graph(tmp_path, ["pkg"])
    assert cycles(graph) == []


def test_the_checker_reads_relative_and_package_imports(tmp_path: Path) -> None:
    _write(tmp_path, {
        "top/__init__.py": "from .sub import thing\n",
        "top/sub/__init__.py": "",
        "top/sub/thing.py": "from .. import other\nimport aiohttp.web\n",
        "top/other.py": "from top.sub import thing as t\n",
    })
    graph, external = import_graph(tmp_path, ["top"])
    assert graph["top"] == {"top.sub.thing"}
    assert graph["top.sub.thing"] == {"top.other"}
    assert graph["top.other"] == {"top.sub.thing"}
    assert "aiohttp" in external["top.sub.thing"]
    assert cycles(graph) == [["top.other", "top.sub.thing"]]
