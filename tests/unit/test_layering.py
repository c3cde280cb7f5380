"""Dependencies point one way (DESIGN.md, "Shape of the code"): `api`, `simulators` and
`dashboards` use `ingest`; `dashboards` may use of `api` only its KPI catalogue, and of the
stores only the public names of `ingest.stores` (its `__all__`); `ingest`
uses none of them; nothing imports the composition root (`citypilot`); only `citypilot/`
reads the environment; and the import graph of the whole tree has no cycle.

Every import counts, also those inside functions: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("ingest", "api", "simulators", "dashboards", "citypilot")
TREE = (*PACKAGES, "bench")  # everything importable that is not a test
FORBIDDEN = {
    "ingest": {"api", "simulators", "dashboards", "citypilot"},
    "api": {"simulators", "dashboards", "citypilot"},
    "simulators": {"api", "dashboards", "citypilot"},
    "dashboards": {"simulators", "citypilot"},
    "citypilot": set(),
}
# What `dashboards` may import of `api`: the KPI definitions, never the app or its routes.
DASHBOARDS_MAY_USE_OF_API = {"api.kpis.definitions"}
# What those may import of `api` in turn: the translation markers, which import nothing.
LEAVES_OF_API = {"api.texts"}

# No import cycle anywhere in the tree.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(f): f for top in TREE for f in sorted((ROOT / top).rglob("*.py"))}


def _imported(path: Path) -> Iterator[str]:
    """The modules `path` imports (a name imported from a package that is a module of its
    own counts as that module)."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in MODULES else base


def _graph() -> dict[str, set[str]]:
    return {name: {m for m in _imported(path) if m in MODULES and m != name}
            for name, path in MODULES.items()}


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_point_one_way(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package}/ has no modules"
    bad = {str(f.relative_to(ROOT)): sorted({m.split(".")[0] for m in _imported(f)}
                                            & FORBIDDEN[package]) for f in files}
    assert {f: v for f, v in bad.items() if v} == {}


def test_dashboards_use_only_the_kpi_catalogue_of_api() -> None:
    used = {str(f.relative_to(ROOT)): sorted(m for m in _imported(f)
                                             if m.split(".")[0] == "api"
                                             and m not in DASHBOARDS_MAY_USE_OF_API)
            for f in sorted((ROOT / "dashboards").rglob("*.py"))}
    assert {f: v for f, v in used.items() if v} == {}


def _public_names(module: str) -> set[str]:
    for node in ast.parse(MODULES[module].read_text()).body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"{module} has no __all__")


def test_dashboards_use_only_the_public_names_of_the_stores() -> None:
    public = _public_names("ingest.stores")
    used: dict[str, list[str]] = {}
    for f in sorted((ROOT / "dashboards").rglob("*.py")):
        modules = sorted({m for m in _imported(f) if m.startswith("ingest.stores.")})
        names = sorted(f"ingest.stores.{a.name}" for node in ast.walk(ast.parse(f.read_text()))
                       if isinstance(node, ast.ImportFrom) and node.module == "ingest.stores"
                       for a in node.names if a.name not in public)
        if modules or names:
            used[str(f.relative_to(ROOT))] = modules + names
    assert used == {}


def test_the_kpi_catalogue_pulls_in_nothing_of_api() -> None:
    # Else "only the catalogue" would bring the rest of api along.
    for name in DASHBOARDS_MAY_USE_OF_API:
        assert {m for m in _imported(MODULES[name]) if m.split(".")[0] == "api"} <= \
            LEAVES_OF_API
    for name in LEAVES_OF_API:
        assert {m for m in _imported(MODULES[name]) if m.split(".")[0] == "api"} == set()


def _cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == {frozenset({"a", "b", "c"})}


def test_the_import_graph_has_no_cycle() -> None:
    assert len(MODULES) > 100, "the tree was not found"
    assert _cycles(_graph()) == KNOWN_CYCLES


@pytest.mark.parametrize("package", ["ingest", "api", "simulators", "dashboards"])
def test_only_the_composition_root_reads_the_environment(package: str) -> None:
    readers = [str(f.relative_to(ROOT)) for f in (ROOT / package).rglob("*.py")
               if "os.environ" in f.read_text() or "getenv(" in f.read_text()]
    assert readers == []


def test_ingest_holds_only_the_data_path() -> None:
    # DESIGN.md "Shape of the code": model, topics, units, decode/, mqtt/, stores/, spool,
    # collector, gateway/ and the package's commands; anything else belongs to a consumer.
    data_path = {"__init__.py", "cli.py", "model.py", "topics.py", "units.py", "decode",
                 "mqtt", "stores", "spool", "collector", "gateway"}
    found = {p.name for p in (ROOT / "ingest").iterdir()
             if p.name != "__pycache__" and (p.suffix == ".py" or p.is_dir())}
    assert found == data_path


def test_no_module_over_400_lines() -> None:
    # A module a reader can hold in mind; generated code (protobuf) aside.
    files = [f for top in (*TREE, "tests") for f in (ROOT / top).rglob("*.py")
             if not f.name.endswith("_pb2.py")]
    long = {str(f.relative_to(ROOT)): n for f in files
            if (n := len(f.read_text().splitlines())) > 400}
    assert long == {}
