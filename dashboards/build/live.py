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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx

from dashboards.build import files
from dashboards.build.check import Problem, check_files
from dashboards.build.panels import INFLUX, Json
from dashboards.build.substitute import TimeRange, Value, interpolate, references
from ingest.stores.base import StoreConfigError
from ingest.stores.influx import parse_url

_PER_VARIABLE = 8  # single-valued variables: the first values tried
_COMBINATIONS = 64
Values = dict[str, Value]


class QueryError(Exception):
    """InfluxDB refused or failed a query, or could not be reached."""


class Influx:
    """A plain synchronous InfluxQL client for the check (one request per query)."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        try:
            target = parse_url(url)
        except StoreConfigError as exc:
            raise QueryError(str(exc)) from None
        self.database = target.database
        self.where = target.where
        self._client = httpx.Client(base_url=target.base_url, auth=target.auth,
                                    timeout=timeout_s)
        self.queries = 0

    def series(self, query: str) -> list[dict[str, Any]]:
        self.queries += 1
        try:
            resp = self._client.post("/query", data={"q": query, "db": self.database,
                                                     "epoch": "ms"})
            body = resp.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise QueryError(f"InfluxDB at {self.where}: {exc}") from None
        results = body.get("results") or [{}]
        error = body.get("error") or results[0].get("error")
        if resp.status_code != 200 or error:
            raise QueryError(str(error or f"HTTP {resp.status_code}"))
        return list(results[0].get("series") or [])

    def close(self) -> None:
        self._client.close()


def has_rows(series: list[dict[str, Any]]) -> bool:
    return any(s.get("values") for s in series)


def _js_regex(text: str) -> re.Pattern[str] | None:
    if not text:
        return None
    body, _, flags = text[1:].rpartition("/") if text.startswith("/") else (text, "", "")
    return re.compile(body, re.IGNORECASE if "i" in flags else 0)


def resolve(var: Json, values: Values, rng: TimeRange, db: Influx) -> list[str]:
    """The values of one variable, given the earlier ones."""
    kind = var.get("type")
    if kind in ("textbox", "constant"):
        return [str(var.get("query", ""))]
    if kind == "custom":
        return [v.strip() for v in str(var.get("query", "")).split(",") if v.strip()]
    if kind != "query":
        return []
    found: list[str] = []
    for s in db.series(interpolate(str(var["query"]), values, rng)):
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


def combinations(variables: list[Json], rng: TimeRange, db: Influx,
                 values: Values | None = None) -> Iterator[Values]:
    """Every usable assignment of the variables, depth first, at most `_COMBINATIONS`."""
    count = 0

    def walk(i: int, values: Values) -> Iterator[Values]:
        nonlocal count
        if count >= _COMBINATIONS:
            return
        if i == len(variables):
            count += 1
            yield values
            return
        var = variables[i]
        found = resolve(var, values, rng, db)
        if var.get("multi") or var.get("includeAll") or not found:
            # No value (a gateway has no telemetry kind): queries using it are skipped.
            multi = bool(var.get("multi") or var.get("includeAll"))
            yield from walk(i + 1, {**values, var["name"]: Value(tuple(found), multi)})
            return
        for value in found[:_PER_VARIABLE]:
            yield from walk(i + 1, {**values, var["name"]: Value((value,))})

    yield from walk(0, dict(values or {}))


def _repeated(panel: Json, values: Values) -> Iterator[Values]:
    name = panel.get("repeat")
    if not name or name not in values:
        yield values
        return
    for value in values[name].values:
        yield {**values, name: Value((value,), True)}


def _target(where: str, query: str, combos: list[Values], panel: Json, rng: TimeRange,
            db: Influx) -> Problem | None:
    sent, used = query, references(query)
    for values in combos:
        if any(not values[name].values for name in used if name in values):
            continue
        for scoped in _repeated(panel, values):
            sent = interpolate(query, scoped, rng)
            try:
                if has_rows(db.series(sent)):
                    return None
            except QueryError as exc:
                return Problem(where, f"query failed: {exc}\n    {sent}")
    return Problem(where, f"no rows for any of {len(combos)} variable combination(s) "
                          f"(e.g. a misspelt measurement or field)\n    {sent}")


def run_dashboard(board: Json, uids: dict[str, str], db: Influx, now_ms: int
                  ) -> list[Problem]:
    title = str(board.get("title"))
    try:
        rng = TimeRange.relative(board["time"]["from"], board["time"]["to"], now_ms)
    except (KeyError, TypeError, ValueError):
        return []  # the static check reports it
    variables = board.get("templating", {}).get("list", [])
    try:
        combos = list(combinations(variables, rng, db))
    except QueryError as exc:
        return [Problem(title, f"a variable's query failed: {exc}")]
    problems = [Problem(title, f"variable {var.get('name')!r} resolves to no value (is "
                               "there data in the range?)") for var in variables
                if all(not c[var["name"]].values for c in combos)]
    for panel in board.get("panels") or []:
        for target in panel.get("targets") or []:
            uid = (target.get("datasource") or {}).get("uid")
            if uids.get(str(uid)) != INFLUX["type"]:
                continue
            where = f"{title} / {panel.get('title')} [{target.get('refId')}]"
            problem = _target(where, str(target.get("query", "")), combos, panel, rng, db)
            if problem is not None:
                problems.append(problem)
    return problems


def run_alerts(rules: list[tuple[str, Json]], uids: dict[str, str], db: Influx,
               now_ms: int) -> list[Problem]:
    """Each InfluxQL alert query once over its window: errors only."""
    problems = []
    for where, item in rules:
        if uids.get(str(item.get("datasourceUid"))) != INFLUX["type"]:
            continue
        window = item.get("relativeTimeRange") or {}
        rng = TimeRange(now_ms - int(window.get("from", 3600)) * 1000,
                        now_ms - int(window.get("to", 0)) * 1000)
        query = interpolate(str((item.get("model") or {}).get("query", "")), {}, rng)
        try:
            db.series(query)
        except QueryError as exc:
            problems.append(Problem(where, f"query failed: {exc}\n    {query}"))
    return problems


def check_all(root: Path, api_paths: Iterable[str], store_url: str | None, now_ms: int
              ) -> tuple[list[Problem], int]:
    """The static problems, then (with a store URL) those of every InfluxQL query; and
    how many queries ran. `api_paths`: the API's OpenAPI path templates."""
    problems, boards = check_files(root, api_paths)
    if store_url is None or not boards:
        return problems, 0
    uids = files.datasources(root)
    try:
        db = Influx(store_url)
    except QueryError as exc:
        return [*problems, Problem("store", str(exc))], 0
    try:
        for board in boards.values():
            problems += run_dashboard(board, uids, db, now_ms)
        problems += run_alerts(files.alert_items(root), uids, db, now_ms)
    finally:
        db.close()
    return problems, db.queries
