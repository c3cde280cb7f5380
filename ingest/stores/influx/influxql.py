"""InfluxQL for the reader: statements built from typed queries, answers parsed back.

Kept apart from `http.py` (the transport and its error semantics) because it is pure: text
in, text out, testable without a server. Every filter goes through one WHERE builder,
`conditions`. Nothing from a request reaches a statement raw:
identifiers are double-quoted, tag values single-quoted with InfluxQL's escapes, regexes built
from escaped literals, numbers formatted from floats and ints. Tag keys must be citypilot's
own (`TAG_KEYS`); the quoting also covers InfluxQL keywords such as `user`.

The stores know no calendar: the caller gives explicit windows (local midnights, weeks,
months, across DST changes), which `GROUP BY time()` alone cannot express (it aligns to the
epoch; `1w` starts on a Thursday; there is no month). Adjacent windows of equal length (the
days of a month) become one statement grouped by time with an offset; any other window is a
statement of its own; all go to InfluxDB together (`;`-separated).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson

from ingest.model import DEAD_LETTER_MEASUREMENT, TAG_KEYS, FieldValue, Point
from ingest.stores.base import (
    ALL_TIME,
    Aggregate,
    AggRow,
    DeadLetter,
    Dirty,
    Distinct,
    Histogram,
    HistRow,
    Seen,
    Stat,
    StoreRejected,
    TagFilter,
    ValueRow,
    Values,
)
from ingest.stores.histogram import bucket

_LN10_OVER_10 = math.log(10) / 10  # 10**(x/10) == exp(x * ln(10) / 10)
_FUNCTIONS = {Stat.MEAN: "mean", Stat.MIN: "min", Stat.MAX: "max", Stat.SUM: "sum",
              Stat.COUNT: "count"}
_DEVICE_TAGS = ("pilot", "gateway", "device")
Series = dict[str, Any]


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes (keywords such as `user` included)."""
    return '"' + _escape(name) + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + _escape(value) + "'"


def _escape(text: str) -> str:
    # influxql.ScanString knows exactly these escapes; a raw newline ends the string.
    return (text.replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")
            .replace("\n", "\\n"))


def number(value: float) -> str:
    """A finite float as an InfluxQL number literal (which has no exponent notation)."""
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {value!r}")
    return format(Decimal(repr(float(value))), "f")


def prefix_regex(prefix: str) -> str:
    """A regex literal matching strings that start with `prefix`, every character escaped
    (Go's RE2 takes `\\x{..}` for any code point, which also hides `/` and newlines)."""
    body = "".join(ch if ch.isalnum() and ch.isascii() else f"\\x{{{ord(ch):x}}}"
                   for ch in prefix)
    return f"/^{body}/"


def _tag_key(key: str) -> str:
    if key not in TAG_KEYS:
        raise ValueError(f"{key!r} is not a tag citypilot writes")
    return quote_ident(key)


def conditions(where: TagFilter, start: int | None, end: int | None) -> list[str]:
    """Tag filters (`key IN values` as ORs) and the time range, as WHERE conditions."""
    out: list[str] = []
    for key, values in where:
        if not values:
            out.append("false")  # IN () matches nothing
            continue
        ors = " OR ".join(f"{_tag_key(key)} = {quote_literal(v)}" for v in values)
        out.append(f"({ors})" if len(values) > 1 else ors)
    if start is not None and start != ALL_TIME[0]:
        out.append(f"time >= {int(start)}")
    if end is not None and end != ALL_TIME[1]:
        out.append(f"time < {int(end)}")
    return out


def _where(parts: Sequence[str]) -> str:
    return " WHERE " + " AND ".join(parts) if parts else ""


def _group(by: Sequence[str], time_part: str = "") -> str:
    keys = [time_part] if time_part else []
    keys += [_tag_key(k) for k in by]
    return " GROUP BY " + ",".join(keys) if keys else ""


def _sources(measurements: Sequence[str]) -> str:
    return ",".join(quote_ident(m) for m in measurements)


@dataclass(frozen=True, slots=True)
class Run:
    """Windows `first` .. `first + count - 1`, adjacent and `length` ns long each: one
    statement with `GROUP BY time(length, lo % length)` answers all of them (a statement
    costs InfluxDB tens of milliseconds before it reads a point, so a month of days in one
    statement is far cheaper than thirty). A window that starts no run is a run of one."""

    first: int
    count: int
    lo: int
    length: int

    @property
    def hi(self) -> int:
        return self.lo + self.count * self.length

    def window(self, bucket_ns: int) -> int:
        return self.first + (bucket_ns - self.lo) // self.length if self.count > 1 \
            else self.first

    @property
    def time_group(self) -> str:
        return f"time({self.length}ns, {self.lo % self.length}ns)" if self.count > 1 else ""


def runs(windows: Sequence[tuple[int, int]], multiple_of: int = 1) -> list[Run]:
    """Maximal runs of adjacent equal windows (a DST day, 23 or 25 hours long, ends one);
    only windows whose length is a multiple of `multiple_of` (a rollup's interval) join."""
    out: list[Run] = []
    i = 0
    while i < len(windows):
        lo, hi = windows[i]
        j = i + 1
        if (hi - lo) % multiple_of == 0:
            while j < len(windows) and windows[j][0] == windows[j - 1][1] \
                    and windows[j][1] - windows[j][0] == hi - lo:
                j += 1
        out.append(Run(i, j - i, lo, hi - lo))
        i = j
    return out


def _grouped(by: Sequence[str], run: Run) -> str:
    return _group(by, run.time_group) + (" fill(none)" if run.time_group else "")


def aggregate_statements(q: Aggregate) -> tuple[list[str], list[Run]]:
    """The statements of `q`, one per run of windows (see `Run`)."""
    if q.every_ns is not None:  # buckets of its own in each window: a statement each
        plan = [Run(i, 1, lo, hi - lo) for i, (lo, hi) in enumerate(q.windows)]
        return [_bucketed_statement(q, q.every_ns, run) for run in plan], plan
    every = round(q.inner.every_s * 1e9) if q.inner is not None else 1
    plan = runs(q.windows, every)
    return [_aggregate_statement(q, run) for run in plan], plan


def _bucketed_statement(q: Aggregate, every: int, run: Run) -> str:
    return (f"SELECT {_FUNCTIONS[q.stat]}({quote_ident(q.field)}) FROM {_sources(q.measurements)}"
            f"{_where(conditions(q.where, run.lo, run.hi))}"
            f"{_group(q.by, f'time({every}ns)')} fill(none)")


def _aggregate_statement(q: Aggregate, run: Run) -> str:
    field = quote_ident(q.field)
    where = conditions(q.where, run.lo, run.hi)
    if q.prefix is not None:
        where.insert(0, f"{field} =~ {prefix_regex(q.prefix)}")
    source, by = _sources(q.measurements), _grouped(q.by, run)
    if q.inner is not None:
        every = round(q.inner.every_s * 1e9)
        inner = (f"SELECT {_FUNCTIONS[q.inner.stat]}({field}) AS \"r\" FROM {source}"
                 f"{_where(where)}{_group(q.by, f'time({every}ns, {run.lo % every}ns)')}"
                 " fill(none)")
        outer = conditions((), run.lo, run.hi)
        if q.above is not None:
            outer.insert(0, f'"r" > {number(q.above)}')
        return f'SELECT {_FUNCTIONS[q.stat]}("r") FROM ({inner}){_where(outer)}{by}'
    if q.stat is Stat.MEAN_EXP10:
        inner = (f'SELECT exp({field} * {number(_LN10_OVER_10)}) AS "e" FROM {source}'
                 f"{_where(where)}{_group(q.by)}")
        return f'SELECT mean("e") FROM ({inner}){_where(conditions((), run.lo, run.hi))}{by}'
    if q.stat is Stat.COUNT_DISTINCT:
        call = f"count(distinct({field}))"
    elif q.stat is Stat.P95:
        call = f"percentile({field}, 95)"
    else:
        call = f"{_FUNCTIONS[q.stat]}({field})"
    return f"SELECT {call} FROM {source}{_where(where)}{by}"


def aggregate_rows(q: Aggregate, plan: list[Run], results: list[list[Series]]
                   ) -> list[AggRow]:
    rows: list[AggRow] = []
    for run, series_list in zip(plan, results, strict=True):
        for series in series_list:
            tags = series.get("tags") or {}
            for row in series.get("values") or []:
                if row[1] is not None:
                    window = run.window(int(row[0]))
                    start = int(row[0]) if q.every_ns is not None else q.windows[window][0]
                    rows.append(AggRow(window, series["name"],
                                       tuple((k, str(tags.get(k, ""))) for k in q.by),
                                       float(row[1]), start))
    # InfluxDB answers series sorted by measurement and tags, each in time order: a stable
    # sort by window gives (window, measurement, tags) order without comparing tags.
    rows.sort(key=lambda r: r.window)
    return rows


def distinct_statements(q: Distinct) -> tuple[list[str], list[Run]]:
    plan = runs(q.windows)
    return [f"SELECT distinct({quote_ident(q.field)}) FROM {quote_ident(q.measurement)}"
            f"{_where(conditions(q.where, run.lo, run.hi))}{_grouped((), run)}"
            for run in plan], plan


def distinct_sets(q: Distinct, plan: list[Run], results: list[list[Series]]
                  ) -> list[set[str]]:
    sets: list[set[str]] = [set() for _ in q.windows]
    for run, series_list in zip(plan, results, strict=True):
        for series in series_list:
            for row in series.get("values") or []:
                if row[1] is not None:
                    sets[run.window(int(row[0]))].add(str(row[1]))
    return sets


def histogram_statements(q: Histogram) -> list[str]:
    """The values themselves, a statement per window: InfluxQL cannot group by a value,
    so the buckets are counted here (`histogram_rows`), a window's answer at a time."""
    return [f"SELECT {quote_ident(q.field)} FROM {_sources(q.measurements)}"
            f"{_where(conditions(q.where, lo, hi))}" for lo, hi in q.windows]


def histogram_rows(q: Histogram, results: list[list[Series]]) -> list[HistRow]:
    rows: list[HistRow] = []
    for window, series_list in enumerate(results):
        for series in sorted(series_list, key=lambda s: str(s["name"])):
            counts = Counter(bucket(float(row[1]), q.accuracy)
                             for row in series.get("values") or [] if row[1] is not None)
            rows += [HistRow(window, str(series["name"]), k, n)
                     for k, n in sorted(counts.items())]
    return rows


def seen_statement(selector: str, measurements: Sequence[str], field: str, start: int | None,
                   end: int | None, where: TagFilter, by: Sequence[str] = ()) -> str:
    """`selector` (first or last) of `field` per device (and `by` tags): when each was first
    or last seen."""
    return (f"SELECT {selector}({quote_ident(field)}) FROM {_sources(measurements)}"
            f"{_where(conditions(where, start, end))}{_group((*_DEVICE_TAGS, *by))}")


def seen_rows(series_list: list[Series], by: Sequence[str] = ()) -> list[Seen]:
    seen: list[Seen] = []
    for s in series_list:
        if s.get("values"):
            tags = s.get("tags") or {}
            seen.append(Seen(s["name"], str(tags.get("pilot", "")), str(tags.get("gateway", "")),
                             str(tags.get("device", "")), int(s["values"][0][0]),
                             tuple((k, str(tags.get(k, ""))) for k in by)))
    return sorted(seen, key=Seen.order)


def measurement_names(series_list: list[Series]) -> list[str]:
    return sorted(str(row[0]) for s in series_list for row in s.get("values") or [])


def statement_results(body: bytes, expected: int) -> list[list[Series]]:
    """The series of each statement of a `/query` answer; "database not found" is no data
    (the collector creates the database on its first write)."""
    try:
        results = orjson.loads(body)["results"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise StoreRejected(f"InfluxDB sent an unexpected answer: {body[:200]!r}") from None
    out: list[list[Series]] = [[] for _ in range(expected)]
    for result in results:
        error = result.get("error")
        if error and "database not found" in str(error):
            continue
        if error:
            raise StoreRejected(f"InfluxDB query failed: {error}")
        index = int(result.get("statement_id", 0))
        if 0 <= index < expected:
            out[index] = list(result.get("series") or [])
    return out


def first_error(body: bytes) -> str | None:
    """The error of a one-statement answer (e.g. CREATE DATABASE), if any."""
    try:
        result = orjson.loads(body)["results"][0]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        raise StoreRejected(f"InfluxDB sent an unexpected answer: {body[:200]!r}") from None
    error = result.get("error") if isinstance(result, dict) else None
    return str(error) if error else None


def values_statement(q: Values) -> str:
    tags = ",".join(quote_ident(k) for k in _DEVICE_TAGS)
    order = "ASC" if q.oldest_first else "DESC"
    return (f"SELECT {quote_ident(q.field)},{tags} FROM {quote_ident(q.measurement)}"
            f"{_where(conditions(q.where, *q.window))} ORDER BY time {order} "
            f"LIMIT {int(q.limit)} OFFSET {int(q.offset)}")


def value_rows(series_list: list[Series]) -> list[ValueRow]:
    return [ValueRow(int(r[0]), float(r[1]), r[2] or "", r[3] or "", r[4] or "")
            for s in series_list for r in s.get("values") or []
            if isinstance(r[1], int | float) and not isinstance(r[1], bool)]


def latest_statement(measurement: str, where: TagFilter) -> str:
    # Not last(*): it takes each field's own last value, possibly from different points.
    return (f"SELECT * FROM {quote_ident(measurement)}{_where(conditions(where, None, None))}"
            f"{_group(_DEVICE_TAGS)} ORDER BY time DESC LIMIT 1")


def latest_points(measurement: str, series_list: list[Series]) -> list[Point]:
    points = [row_point(measurement, s) for s in series_list if s.get("values")]
    return sorted(points, key=lambda p: (p.tag("pilot"), p.tag("gateway"), p.tag("device")))


def dead_letters_statement(reason: str | None, since: int | None, limit: int) -> str:
    where: TagFilter = (("reason", (reason,)),) if reason is not None else ()
    return (f'SELECT "topic","payload","detail","reason","payload_encoding" FROM '
            f"{quote_ident(DEAD_LETTER_MEASUREMENT)}{_where(conditions(where, since, None))} "
            f"ORDER BY time DESC LIMIT {int(limit)}")


def dead_letter_rows(series_list: list[Series]) -> list[DeadLetter]:
    values = series_list[0].get("values") or [] if series_list else []
    return [DeadLetter(ts=int(row[0]), topic=row[1] or "", payload=row[2] or "",
                       detail=row[3] or "", reason=row[4] or "",
                       payload_encoding=row[5] or "utf-8") for row in values]


def row_point(measurement: str, series: dict[str, Any]) -> Point:
    """A `SELECT *` row back into a Point: known tag keys are tags, all else are fields."""
    tags: dict[str, str] = {k: v for k, v in (series.get("tags") or {}).items() if v}
    fields: dict[str, FieldValue] = {}
    row = series["values"][0]
    for column, value in zip(series["columns"][1:], row[1:], strict=True):
        if value is None:
            continue
        if column in TAG_KEYS:
            tags[column] = str(value)
        else:
            fields[column] = value if isinstance(value, str) else float(value)
    ordered = tuple((k, tags[k]) for k in TAG_KEYS if tags.get(k))
    return Point(measurement, ordered, fields, int(row[0]))



def numeric_fields(series_list: list[Series]) -> dict[str, list[str]]:
    """`SHOW FIELD KEYS` as the float and integer fields of each measurement."""
    return {str(s["name"]): sorted(str(key) for key, kind in s.get("values") or []
                                   if kind in ("float", "integer"))
            for s in series_list}


def dirty_statement(measurement: str, since: int | None) -> str:
    after = "" if since is None else f' WHERE "marked_at" > {number(float(since))}'
    return f'SELECT "marked_at" FROM {quote_ident(measurement)}{after} GROUP BY "pilot"'


def dirty_rows(series_list: list[Series]) -> list[Dirty]:
    marks = [Dirty(str((s.get("tags") or {}).get("pilot", "")), int(row[0]), int(row[1]))
             for s in series_list for row in s.get("values") or [] if row[1] is not None]
    return sorted(marks, key=lambda d: (d.marked_at, d.pilot, d.hour))
