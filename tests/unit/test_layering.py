"""Dependencies point one way (DESIGN.md): ingest uses neither api nor simulators; nothing
imports the composition root; only citypilot/ reads the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "ingest": {"api", "simulators", "citypilot"},
    "api": {"simulators", "citypilot"},
    "simulators": {"api", "citypilot"},
}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_point_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    bad = {str(f.relative_to(ROOT)): sorted(_imports(f) & FORBIDDEN[package]) for f in files}
    assert {f: v for f, v in bad.items() if v} == {}


@pytest.mark.parametrize("package", ["ingest", "api"])
def test_only_the_composition_root_reads_the_environment(package: str) -> None:
    readers = [str(f.relative_to(ROOT)) for f in (ROOT / package).rglob("*.py")
               if "os.environ" in f.read_text() or "getenv(" in f.read_text()]
    assert readers == []
