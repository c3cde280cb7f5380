"""`citypilot dashboards check`, the part that asks InfluxDB: every InfluxQL panel query runs.

Variables are resolved as Grafana would, in order, each query variable's `SHOW ...` with the
earlier ones substituted (and its `regex` filter applied); "All" variables take all their
values, single-valued ones are tried value by value (a drill-down's battery panel has data
for a battery-powered device only). A panel's query passes when it answers rows for at least
one combination of the variables; it fails when it errors, or when it answers no rows for
any (InfluxDB answers a misspelt measurement with no rows, not with an error). Alert-rule
queries run once over their own window: an error fails, no rows is a quiet rule.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from dashboards.build import files
from dashboards.build.check import Problem, check_files
from dashboards.build.panels import INFLUX, Json
from dashboards.build.substitute import TimeRange, Value, interpolate, references
from ingest.stores import InfluxReader, StoreError

_PER_VARIABLE = 8  # single-valued variables: the first values tried
_COMBINATIONS = 64
Values = dict[str, Value]
Series = list[dict[str, Any]]


class Influx:
    """The store's reader for the check, with the database of each InfluxDB data source
    (the raw one, the rollups) and a count of the queries run."""

    def __init__(self, reader: InfluxReader, databases: dict[str, str]) -> None:
        self.reader = reader
        self.databases = databases  # data source uid -> database
        self.queries = 0

    async def series(self, query: str, uid: object = INFLUX["uid"]) -> Series:
        """The series of `query` in the database of data source `uid`; StoreError when it
        fails."""
        self.queries += 1
        return await self.reader.influxql(query, db=self.databases.get(str(uid)))


def has_rows(series: Series) -> bool:
    return any(s.get("values") for s in series)


def _js_regex(text: str) -> re.Pattern[str] | None:
    if not text:
        return None
    body, _, flags = text[1:].rpartition("/") if text.startswith("/") else (text, "", "")
    return re.compile(body, re.IGNORECASE if "i" in flags else 0)


def _uid(ref: Any) -> object:
    return ref.get("uid") if isinstance(ref, dict) else ref


async def resolve(var: Json, values: Values, rng: TimeRange, db: Influx) -> list[str]:
    """The values of one variable, given the earlier ones."""
    kind = var.get("type")
    if kind in ("textbox", "constant"):
        return [str(var.get("query", ""))]
    if kind == "custom":
        return [v.strip() for v in str(var.get("query", "")).split(",") if v.strip()]
    if kind != "query":
        return []
    found: list[str] = []
    query = interpolate(str(var["query"]), values, rng)
    for s in await db.series(query, _uid(var.get("datasource"))):
        columns = s.get("columns") or []
        column = columns.index("value") if columns[:1] == ["key"] else 0
        found += [str(row[column]) for row in s.get("values") or []]
    return filter_values(found, str(var.get("regex") or ""), bool(var.get("sort")))


def filter_values(found: list[str], regex: str, sort: bool) -> list[str]:
    """A query variable's values as Grafana keeps them: deduplicated, those its `regex`
    (a JavaScript regex literal) matches, a capture group's text if it has one, sorted."""
    pattern = _js_regex(regex)
    kept = []
    for value in dict.fromkeys(found):
        match = pattern.search(value) if pattern else None
        if pattern is None or match:
            kept.append(match.group(1) if match and match.groups() else value)
    return sorted(kept) if sort else kept


async def combinations(variables: list[Json], rng: TimeRange, db: Influx,
                       values: Values | None = None) -> AsyncIterator[Values]:
    """Every usable assignment of the variables, depth first, at most `_COMBINATIONS`."""
    count = 0

    async def walk(i: int, values: Values) -> AsyncIterator[Values]:
        nonlocal count
        if count >= _COMBINATIONS:
            return
        if i == len(variables):
            count += 1
            yield values
            return
        var = variables[i]
        found = await resolve(var, values, rng, db)
        if var.get("multi") or var.get("includeAll") or not found:
            # No value (a gateway has no telemetry kind): queries using it are skipped.
            multi = bool(var.get("multi") or var.get("includeAll"))
            async for done in walk(i + 1, {**values, var["name"]: Value(tuple(found), multi)}):
                yield done
            return
        for value in found[:_PER_VARIABLE]:
            async for done in walk(i + 1, {**values, var["name"]: Value((value,))}):
                yield done

    async for done in walk(0, dict(values or {})):
        yield done


def repeated(panel: Json, values: Values) -> list[Values]:
    """The variable values of each copy of a panel that repeats over a variable."""
    name = panel.get("repeat")
    if not name or name not in values:
        return [values]
    return [{**values, name: Value((value,), True)} for value in values[name].values]


def usable(query: str, combos: list[Values], panel: Json) -> list[Values]:
    """The assignments a query runs with: those giving a value to each variable it uses,
    once per copy of a repeated panel."""
    used = references(query)
    return [scoped for values in combos
            if all(values[name].values for name in used if name in values)
            for scoped in repeated(panel, values)]


async def _target(where: str, target: Json, combos: list[Values], panel: Json,
                  rng: TimeRange, db: Influx) -> Problem | None:
    query = sent = str(target.get("query", ""))
    rng = rng.of_panel(panel)
    for values in usable(query, combos, panel):
        sent = interpolate(query, values, rng)
        try:
            if has_rows(await db.series(sent, _uid(target.get("datasource")))):
                return None
        except StoreError as exc:
            return Problem(where, f"query failed: {exc}\n    {sent}")
    return Problem(where, f"no rows for any of {len(combos)} variable combination(s) "
                          f"(e.g. a misspelt measurement or field)\n    {sent}")


def influx_targets(board: Json, uids: dict[str, str]) -> list[tuple[str, Json, Json]]:
    """("<dashboard> / <panel> [refId]", panel, target) of every InfluxQL target."""
    title = str(board.get("title"))
    return [(f"{title} / {panel.get('title')} [{target.get('refId')}]", panel, target)
            for panel in board.get("panels") or [] for target in panel.get("targets") or []
            if uids.get(str(_uid(target.get("datasource")))) == INFLUX["type"]]


async def run_dashboard(board: Json, uids: dict[str, str], db: Influx, now_ms: int
                        ) -> list[Problem]:
    title = str(board.get("title"))
    try:
        rng = TimeRange.relative(board["time"]["from"], board["time"]["to"], now_ms)
    except (KeyError, TypeError, ValueError):
        return []  # the static check reports it
    variables = board.get("templating", {}).get("list", [])
    try:
        combos = [c async for c in combinations(variables, rng, db)]
    except StoreError as exc:
        return [Problem(title, f"a variable's query failed: {exc}")]
    problems = [Problem(title, f"variable {var.get('name')!r} resolves to no value (is "
                               "there data in the range?)") for var in variables
                if all(not c[var["name"]].values for c in combos)]
    for where, panel, target in influx_targets(board, uids):
        problem = await _target(where, target, combos, panel, rng, db)
        if problem is not None:
            problems.append(problem)
    return problems


async def run_alerts(rules: list[tuple[str, Json]], uids: dict[str, str], db: Influx,
                     now_ms: int) -> list[Problem]:
    """Each InfluxQL alert query once over its window: errors only."""
    problems = []
    for where, item in rules:
        uid = item.get("datasourceUid")
        if uids.get(str(uid)) != INFLUX["type"]:
            continue
        window = item.get("relativeTimeRange") or {}
        rng = TimeRange(now_ms - int(window.get("from", 3600)) * 1000,
                        now_ms - int(window.get("to", 0)) * 1000)
        query = interpolate(str((item.get("model") or {}).get("query", "")), {}, rng)
        try:
            await db.series(query, uid)
        except StoreError as exc:
            problems.append(Problem(where, f"query failed: {exc}\n    {query}"))
    return problems


async def check_all(root: Path, api_paths: Iterable[str], store_url: str | None, now_ms: int
                    ) -> tuple[list[Problem], int]:
    """The static problems, then (with a store URL) those of every InfluxQL query; and
    how many queries ran. `api_paths`: the API's OpenAPI path templates."""
    problems, boards = check_files(root, api_paths)
    if store_url is None or not boards:
        return problems, 0
    uids = files.datasources(root)
    try:
        reader = InfluxReader(store_url, deadline_s=30.0, request_timeout_s=30.0,
                              ensure_database=False)
    except StoreError as exc:
        return [*problems, Problem("store", str(exc))], 0
    db = Influx(reader, files.influx_databases(root, reader.database))
    async with reader:
        try:
            await reader.ping()  # one attempt: a store that is down fails the check at once
        except StoreError as exc:
            return [*problems, Problem("store", str(exc))], 0
        for board in boards.values():
            problems += await run_dashboard(board, uids, db, now_ms)
        problems += await run_alerts(files.alert_items(root), uids, db, now_ms)
    return problems, db.queries
