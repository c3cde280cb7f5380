"""`citypilot dashboards check`, the part that needs no server: the files' shape and links.

Every dashboard must be a classic-schema dashboard whose panels carry a title, a grid
position and a unit; every data source uid a panel, a target, a variable or an alert rule
names must be provisioned; every variable a query uses must be defined (before it, for a
variable's own query); an API target must name a route of citypilot's API (and a KPI of the
catalogue); a Prometheus target only metrics the collector exports; an InfluxDB data source
reads the store's database (`${INFLUXDB_DB}`) or its rollups (named as `ingest.stores`
names them). `live.py` then runs the InfluxQL. Problems are collected, not raised, so that
one run reports all of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from api.kpis.definitions import BY_ID
from dashboards.build import files
from dashboards.build.panels import API, EXPRESSION_UID, INFLUX, PROMETHEUS, Json
from dashboards.build.substitute import TimeRange, references
from ingest.stores import rollup_database

_KPI_PATH = re.compile(r"^/api/v1/kpis/([^/?]+)$")
_PROM_NAME = re.compile(r"\bcitypilot_[a-z0-9_]+\b")
_MIXED = "-- Mixed --"


@dataclass(frozen=True, slots=True)
class Problem:
    where: str  # "<dashboard title> / <panel title>" or a file name
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def path_patterns(api_paths: Iterable[str]) -> list[re.Pattern[str]]:
    """citypilot's API paths (OpenAPI templates, handed in by the caller: this package does
    not build the app) as patterns: `{kpi_id}` matches one path segment."""
    return [re.compile("^" + re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")
            for path in api_paths]


def prometheus_names() -> set[str]:
    """Every series name a collector's `/metrics` can expose."""
    from ingest.collector.metrics import CollectorMetrics

    suffixes = {"counter": ("_total", "_created"), "gauge": ("",),
                "histogram": ("_bucket", "_sum", "_count", "_created")}
    return {family.name + s for family in CollectorMetrics().registry.collect()
            for s in suffixes.get(family.type, ("",))}


@dataclass
class Context:
    uids: dict[str, str]
    paths: list[re.Pattern[str]]
    prom: set[str]
    problems: list[Problem]

    def uid(self, where: str, ref: Any, expected: str | None = None) -> None:
        uid = ref.get("uid") if isinstance(ref, dict) else ref
        if uid == _MIXED:
            return
        if not isinstance(uid, str) or uid not in self.uids:
            self.problems.append(Problem(where, f"data source uid {uid!r} is not in the "
                                                "provisioning"))
        elif expected and self.uids[uid] != expected:
            self.problems.append(Problem(where, f"data source {uid!r} is a "
                                                f"{self.uids[uid]}, not a {expected}"))


def _variables(ctx: Context, title: str, board: Json) -> set[str]:
    defined: set[str] = set()
    for var in board.get("templating", {}).get("list", []):
        name = var.get("name")
        where = f"{title} / variable {name}"
        if not isinstance(name, str) or name in defined:
            ctx.problems.append(Problem(where, "a variable needs a unique name"))
            continue
        if var.get("type") == "query":
            ctx.uid(where, var.get("datasource"), INFLUX["type"])
            missing = references(str(var.get("query", ""))) - defined
            if missing:
                ctx.problems.append(Problem(where, "its query uses undefined or later "
                                                   f"variables {sorted(missing)}"))
        defined.add(name)
    return defined


def _target(ctx: Context, where: str, target: Json, defined: set[str]) -> None:
    ref = target.get("datasource") or {}
    uid = ref.get("uid") if isinstance(ref, dict) else None
    ctx.uid(where, ref)
    text = " ".join(str(target.get(k, "")) for k in ("query", "expr", "url"))
    text += " " + " ".join(str(p.get("value", "")) for p in
                     (target.get("url_options") or {}).get("params", []))
    missing = references(text) - defined
    if missing:
        ctx.problems.append(Problem(where, f"uses undefined variables {sorted(missing)}"))
    kind = ctx.uids.get(str(uid))
    if kind == INFLUX["type"] and not str(target.get("query", "")).strip():
        ctx.problems.append(Problem(where, "an InfluxQL target without a query"))
    elif kind == API["type"]:
        _api_target(ctx, where, str(target.get("url", "")))
    elif kind == PROMETHEUS["type"]:
        unknown = set(_PROM_NAME.findall(str(target.get("expr", "")))) - ctx.prom
        if unknown:
            ctx.problems.append(Problem(where, f"no collector exports {sorted(unknown)}"))


def _api_target(ctx: Context, where: str, url: str) -> None:
    if not any(p.match(url) for p in ctx.paths):
        ctx.problems.append(Problem(where, f"{url!r} is not a route of citypilot's API"))
    match = _KPI_PATH.match(url)
    if match and match.group(1) not in BY_ID:
        ctx.problems.append(Problem(where, f"no KPI {match.group(1)!r} in the catalogue"))


def _panel(ctx: Context, title: str, panel: Json, defined: set[str]) -> None:
    where = f"{title} / {panel.get('title') or '(untitled)'}"
    if not panel.get("title") or not panel.get("type"):
        ctx.problems.append(Problem(where, "a panel needs a title and a type"))
    grid = panel.get("gridPos") or {}
    if not all(isinstance(grid.get(k), int) for k in "xywh") or grid["x"] + grid["w"] > 24:
        ctx.problems.append(Problem(where, "gridPos needs integer x, y, w, h within 24 "
                                           "columns"))
    if not ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit"):
        ctx.problems.append(Problem(where, "no unit (fieldConfig.defaults.unit)"))
    ctx.uid(where, panel.get("datasource"))
    repeat = panel.get("repeat")
    if repeat and repeat not in defined:
        ctx.problems.append(Problem(where, f"repeats over undefined variable {repeat!r}"))
    targets = panel.get("targets") or []
    if not targets:
        ctx.problems.append(Problem(where, "no query"))
    refs = [t.get("refId") for t in targets]
    if len(set(refs)) != len(refs):
        ctx.problems.append(Problem(where, "refIds must be unique"))
    for target in targets:
        _target(ctx, f"{where} [{target.get('refId')}]", target, defined)


def _dashboard(ctx: Context, name: str, board: Json) -> None:
    title = str(board.get("title") or name)
    for key, kind in (("uid", str), ("title", str), ("panels", list), ("schemaVersion", int)):
        if not isinstance(board.get(key), kind):
            ctx.problems.append(Problem(name, f"`{key}` must be a {kind.__name__}"))
    try:
        TimeRange.relative(board["time"]["from"], board["time"]["to"], 0)
    except (KeyError, TypeError, ValueError) as exc:
        ctx.problems.append(Problem(name, f"default time range: {exc}"))
    defined = _variables(ctx, title, board)
    for panel in board.get("panels") or []:
        _panel(ctx, title, panel, defined)


def _alerting(ctx: Context, root: Path) -> None:
    receivers: set[str] = set()
    routes: list[tuple[str, str]] = []
    for name, document in files.load_yaml_dir(root, files.ALERTING).items():
        for cp in document.get("contactPoints") or []:
            receivers.add(str(cp.get("name")))
        for policy in document.get("policies") or []:
            routes.append((name, str(policy.get("receiver"))))
        for group in document.get("groups") or []:
            for rule in group.get("rules") or []:
                where = f"{name} / {rule.get('title')}"
                ids = {d.get("refId") for d in rule.get("data") or []}
                if rule.get("condition") not in ids:
                    ctx.problems.append(Problem(where, "its condition is no refId"))
                for item in rule.get("data") or []:
                    if item.get("datasourceUid") != EXPRESSION_UID:
                        ctx.uid(where, item.get("datasourceUid"))
    for name, receiver in routes:
        if receiver not in receivers:
            ctx.problems.append(Problem(name, f"policy receiver {receiver!r} is no contact "
                                              "point"))


def _databases(ctx: Context, root: Path) -> None:
    allowed = (files.DATABASE_VARIABLE, rollup_database(files.DATABASE_VARIABLE))
    for uid, database in files.influx_databases(root, files.DATABASE_VARIABLE).items():
        if database not in allowed:
            ctx.problems.append(Problem(f"{files.DATASOURCES} / {uid}", f"jsonData.dbName "
                                        f"{database!r} is neither {' nor '.join(allowed)}"))


def check_files(root: Path, api_paths: Iterable[str]) -> tuple[list[Problem], dict[str, Json]]:
    """The static problems of the files under `root`, and the dashboards read; API targets
    are checked against `api_paths`, the API's OpenAPI path templates."""
    try:
        uids = files.datasources(root)
        boards = files.load_dashboards(root)
        providers = files.load_yaml_dir(root, "provisioning/dashboards")
    except files.DashboardFileError as exc:
        return [Problem(str(root), str(exc))], {}
    ctx = Context(uids, path_patterns(api_paths), prometheus_names(), [])
    if not boards:
        ctx.problems.append(Problem(str(root), "no dashboard JSON"))
    if not any(p.get("providers") for p in providers.values()):
        ctx.problems.append(Problem("provisioning/dashboards", "no dashboard provider"))
    _databases(ctx, root)
    for name, board in boards.items():
        _dashboard(ctx, name, board)
    try:
        _alerting(ctx, root)
    except files.DashboardFileError as exc:
        ctx.problems.append(Problem(files.ALERTING, str(exc)))
    return ctx.problems, boards
