"""SQL for the SQLite reader: the same answers as `influx/influxql.py` gives.

Pure functions of a connection, run on the reader's thread. Every filter goes through one
WHERE builder, `conditions`. Windows arrive as bound
parameters (a `VALUES` table joined to the points), never as SQL text, and so do tag values
and thresholds; tag keys are checked against `TAG_KEYS` before they become column names. Time
zones never enter SQL (SQLite has none): the caller computes each window's bounds.

Each statistic follows InfluxDB's definition, so both stores agree: COUNT counts the points
carrying the field, P95 is InfluxDB's nearest rank (the floor(n*95/100 + 0.5)-th smallest
value), rollups start at each window's start and leave empty sub-intervals out.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

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
    TagFilter,
    ValueRow,
    Values,
    Window,
)
from ingest.stores.histogram import bucket
from ingest.stores.sqlite.connection import TAGS

_EXP10 = "cp_exp10"  # registered per connection: SQLite's math functions are a build option
_BUCKET = "cp_bucket"  # `histogram.bucket` itself, so that both stores agree on every edge
_SQL = {Stat.MEAN: "AVG({x})", Stat.MIN: "MIN({x})", Stat.MAX: "MAX({x})",
        Stat.SUM: "SUM({x})", Stat.COUNT: "COUNT(*)",
        Stat.COUNT_DISTINCT: "COUNT(DISTINCT COALESCE(p.str, p.num))",
        Stat.MEAN_EXP10: f"AVG({_EXP10}({{x}}))"}
Row = tuple[Any, ...]


def _exp10(x: float | None) -> float | None:
    return None if x is None else 10.0 ** (x / 10.0)


def _column(key: str) -> str:
    if key not in TAG_KEYS:
        raise ValueError(f"{key!r} is not a tag citypilot writes")
    return key


def _windows(windows: Sequence[Window]) -> tuple[str, list[int]]:
    """`WITH w(i, lo, hi) AS (VALUES ...)` with the bounds as parameters."""
    values = ", ".join("(?, ?, ?)" for _ in windows)
    args = [int(v) for i, (lo, hi) in enumerate(windows) for v in (i, lo, hi)]
    return f"WITH w(i, lo, hi) AS (VALUES {values})", args


def conditions(where: TagFilter, start: int | None = None, end: int | None = None,
               alias: str = "p") -> tuple[str, list[Any]]:
    """Tag filters (`key IN values`) and the time range as ` AND ...` conditions, values as
    parameters."""
    sql, args = "", list[Any]()
    for key, values in where:
        marks = ", ".join("?" for _ in values)
        sql += f" AND {alias}.{_column(key)} IN ({marks})" if values else " AND 0"
        args += list(values)
    if start is not None and start != ALL_TIME[0]:
        sql, args = sql + f" AND {alias}.ts >= ?", [*args, int(start)]
    if end is not None and end != ALL_TIME[1]:
        sql, args = sql + f" AND {alias}.ts < ?", [*args, int(end)]
    return sql, args


def _source(q: Aggregate) -> tuple[str, list[Any]]:
    """FROM ... WHERE for the points of `q` in each window (the window table leads the join,
    so each window is one range scan of the (measurement, field, ts) index)."""
    marks = ", ".join("?" for _ in q.measurements)
    tags, tag_args = conditions(q.where)
    sql = (f" FROM w CROSS JOIN points p WHERE p.measurement IN ({marks}) AND p.field = ?"
           f" AND p.ts >= w.lo AND p.ts < w.hi{tags}")
    args: list[Any] = [*q.measurements, q.field, *tag_args]
    if q.prefix is not None:
        sql += " AND substr(p.str, 1, ?) = ?"
        args += [len(q.prefix), q.prefix]
    return sql, args


def aggregate(conn: sqlite3.Connection, q: Aggregate) -> list[AggRow]:
    if q.stat is Stat.MEAN_EXP10:
        conn.create_function(_EXP10, 1, _exp10, deterministic=True)
    head, args = _windows(q.windows)
    source, source_args = _source(q)
    by = [f"p.{_column(k)}" for k in q.by]
    every = q.every_ns
    # Buckets aligned to the epoch, as InfluxQL's GROUP BY time; the double modulo floors
    # for times before 1970 too (SQLite's % truncates toward zero). `every` is our integer.
    keys = ", ".join(["w.i", "p.measurement", *by])
    if every is not None:
        bucket = f"p.ts - ((p.ts % {every}) + {every}) % {every}"
        sql = (f"SELECT {keys}, {bucket} AS b, {_SQL[q.stat].format(x='p.num')} AS v{source} "
               f"GROUP BY {keys}, b HAVING v IS NOT NULL")
        extra: list[Any] = []
    elif q.inner is not None:
        sql, extra = _rollup_sql(q, keys, source)
    elif q.stat is Stat.P95:
        sql, extra = _p95_sql(keys, source), []
    else:
        sql = (f"SELECT {keys}, {_SQL[q.stat].format(x='p.num')} AS v{source} "
               f"GROUP BY {keys} HAVING v IS NOT NULL")
        extra = []
    rows = conn.execute(f"{head} {sql}", [*args, *source_args, *extra]).fetchall()
    if every is None:
        out = [AggRow(int(r[0]), str(r[1]), tuple(zip(q.by, map(str, r[2:-1]), strict=True)),
                      float(r[-1]), q.windows[int(r[0])][0]) for r in rows]
    else:
        out = [AggRow(int(r[0]), str(r[1]), tuple(zip(q.by, map(str, r[2:-2]), strict=True)),
                      float(r[-1]), int(r[-2])) for r in rows]
    return sorted(out, key=lambda r: (r.window, r.measurement, r.tags, r.start))


def _rollup_sql(q: Aggregate, keys: str, source: str) -> tuple[str, list[Any]]:
    assert q.inner is not None
    every = round(q.inner.every_s * 1e9)
    names = ["i", "m", *(f"t{n}" for n in range(len(q.by)))]
    aliased = ", ".join(f"{k} AS {n}" for k, n in zip(keys.split(", "), names, strict=True))
    inner = (f"SELECT {aliased}, (p.ts - w.lo) / {every} AS sub, "
             f"{_SQL[q.inner.stat].format(x='p.num')} AS r{source} GROUP BY {keys}, sub")
    outer_keys = ", ".join(names)
    having, extra = "r IS NOT NULL", list[Any]()
    if q.above is not None:  # finite: Aggregate checks it
        having, extra = having + " AND r > ?", [float(q.above)]
    return (f"SELECT {outer_keys}, {_SQL[q.stat].format(x='r')} AS v FROM ({inner}) "
            f"WHERE {having} GROUP BY {outer_keys}"), extra


def _p95_sql(keys: str, source: str) -> str:
    # InfluxDB: i = floor(n * 95 / 100.0 + 0.5) - 1 (0-based) over the values sorted.
    names = ["i", "m", *(f"t{n}" for n in range(len(keys.split(", ")) - 2))]
    aliased = ", ".join(f"{k} AS {n}" for k, n in zip(keys.split(", "), names, strict=True))
    return (f"SELECT {', '.join(names)}, v FROM (SELECT {aliased}, p.num AS v, "
            f"ROW_NUMBER() OVER (PARTITION BY {keys} ORDER BY p.num) AS rn, "
            f"COUNT(*) OVER (PARTITION BY {keys}) AS n{source} AND p.num IS NOT NULL) "
            "WHERE rn = CAST(n * 95 / 100.0 + 0.5 AS INTEGER)")


def distinct(conn: sqlite3.Connection, q: Distinct) -> list[set[str]]:
    head, args = _windows(q.windows)
    tags, tag_args = conditions(q.where)
    rows = conn.execute(
        f"{head} SELECT DISTINCT w.i, COALESCE(p.str, p.num) FROM w CROSS JOIN points p "
        f"WHERE p.measurement = ? AND p.field = ? AND p.ts >= w.lo AND p.ts < w.hi{tags}",
        [*args, q.measurement, q.field, *tag_args]).fetchall()
    sets: list[set[str]] = [set() for _ in q.windows]
    for i, value in rows:
        sets[int(i)].add(str(value))
    return sets


def histogram(conn: sqlite3.Connection, q: Histogram) -> list[HistRow]:
    conn.create_function(_BUCKET, 2, bucket, deterministic=True)
    head, args = _windows(q.windows)
    marks = ", ".join("?" for _ in q.measurements)
    tags, tag_args = conditions(q.where)
    rows = conn.execute(
        f"{head} SELECT w.i, p.measurement, {_BUCKET}(p.num, ?) AS b, COUNT(*) "
        f"FROM w CROSS JOIN points p WHERE p.measurement IN ({marks}) AND p.field = ? "
        f"AND p.ts >= w.lo AND p.ts < w.hi AND p.num IS NOT NULL{tags} "
        "GROUP BY w.i, p.measurement, b ORDER BY w.i, p.measurement, b",
        [*args, float(q.accuracy), *q.measurements, q.field, *tag_args]).fetchall()
    return [HistRow(int(i), str(m), int(b), int(n)) for i, m, b, n in rows]


def seen(conn: sqlite3.Connection, newest: bool, measurements: Sequence[str], field: str,
         start: int | None, end: int | None, where: TagFilter, by: Sequence[str] = ()
         ) -> list[Seen]:
    """The newest (or oldest) point of `field` per measurement, device and `by` tags."""
    marks = ", ".join("?" for _ in measurements)
    tags, tag_args = conditions(where, start, end)
    keys = ", ".join(["measurement", "pilot", "gateway", "device", *map(_column, by)])
    sql = (f"SELECT {keys}, {'MAX' if newest else 'MIN'}(ts) FROM points p "
           f"WHERE measurement IN ({marks}) AND field = ?{tags}")
    rows = conn.execute(sql + f" GROUP BY {keys}", [*measurements, field, *tag_args]).fetchall()
    seen = [Seen(str(m), str(p), str(g), str(d), int(row[-1]),
                 tuple((k, str(v)) for k, v in zip(by, row[4:-1], strict=True)))
            for row in rows for m, p, g, d in [row[:4]]]
    return sorted(seen, key=Seen.order)


def measurements(conn: sqlite3.Connection) -> list[str]:
    # A skip scan of the primary key: one index seek per measurement, not a table scan.
    rows = conn.execute(
        "WITH RECURSIVE m(name) AS (SELECT MIN(measurement) FROM points UNION ALL "
        "SELECT (SELECT MIN(measurement) FROM points WHERE measurement > m.name) FROM m "
        "WHERE m.name IS NOT NULL) SELECT name FROM m WHERE name IS NOT NULL").fetchall()
    return [str(r[0]) for r in rows]


def values(conn: sqlite3.Connection, q: Values) -> list[ValueRow]:
    tags, args = conditions(q.where, *q.window)
    order = "" if q.oldest_first else " DESC"
    rows = conn.execute(
        "SELECT p.ts, p.num, p.pilot, p.gateway, p.device FROM points p WHERE "
        f"p.measurement = ? AND p.field = ? AND p.num IS NOT NULL{tags} "
        f"ORDER BY p.ts{order}, p.pilot, p.gateway, p.device LIMIT ? OFFSET ?",
        [q.measurement, q.field, *args, int(q.limit), int(q.offset)]).fetchall()
    return [ValueRow(int(ts), float(v), p or "", g or "", d or "") for ts, v, p, g, d in rows]


def latest(conn: sqlite3.Connection, measurement: str, where: TagFilter) -> list[Point]:
    tags, args = conditions(where, alias="points")
    cols = ", ".join("p." + k for k in TAG_KEYS)
    rows = conn.execute(
        "WITH newest AS (SELECT pilot, gateway, device, MAX(ts) AS ts FROM points "
        f"WHERE measurement = ?{tags} GROUP BY pilot, gateway, device) "
        f"SELECT {cols}, p.ts, p.field, p.num, p.str "
        "FROM points p JOIN newest n ON p.pilot = n.pilot AND p.gateway = n.gateway "
        "AND p.device = n.device AND p.ts = n.ts WHERE p.measurement = ? "
        f"ORDER BY {cols}, p.field", [measurement, *args, measurement]).fetchall()
    return _points(measurement, rows)


def _points(measurement: str, rows: list[Row]) -> list[Point]:
    """Rows of the newest time of each (pilot, gateway, device), ordered by series, into one
    point per device; when several series of a device share that time, the first is kept."""
    points: list[Point] = []
    current: tuple[Any, ...] | None = None
    fields: dict[str, FieldValue] = {}
    n = len(TAG_KEYS)
    for row in rows:
        series, ts, field, num, text = row[:n], row[n], row[n + 1], row[n + 2], row[n + 3]
        if current is None or series[:3] != current[:3]:
            fields = {}
            tags = tuple((k, v) for k, v in zip(TAG_KEYS, series, strict=True) if v)
            points.append(Point(measurement, tags, fields, int(ts)))
            current = series
        if series == current:
            fields[field] = text if text is not None else float(num)
    return points


def dead_letters(conn: sqlite3.Connection, reason: str | None, since: int | None,
                 limit: int) -> list[DeadLetter]:
    where: TagFilter = (("reason", (reason,)),) if reason is not None else ()
    tags, args = conditions(where, since, alias="points")
    pick = ", ".join(f"MAX(CASE WHEN field = '{f}' THEN str END)"
                     for f in ("topic", "payload", "detail", "payload_encoding"))
    rows = conn.execute(
        f"SELECT ts, reason, {pick} FROM points WHERE measurement = ?{tags} "
        f"GROUP BY {TAGS}, ts ORDER BY ts DESC, reason LIMIT ?",
        [DEAD_LETTER_MEASUREMENT, *args, int(limit)]).fetchall()
    return [DeadLetter(ts=int(ts), reason=reason_, topic=topic or "", payload=payload or "",
                       detail=detail or "", payload_encoding=encoding or "utf-8")
            for ts, reason_, topic, payload, detail, encoding in rows]


def fields(conn: sqlite3.Connection) -> dict[str, list[str]]:
    """Numeric fields per measurement: a skip scan of (measurement, field), each field judged
    by its first row (a field holds numbers or strings, as InfluxDB's do)."""
    out: dict[str, list[str]] = {}
    for measurement in measurements(conn):
        rows = conn.execute(
            "WITH RECURSIVE f(name) AS (SELECT MIN(field) FROM points WHERE measurement = ?1 "
            "UNION ALL SELECT (SELECT MIN(field) FROM points WHERE measurement = ?1 AND "
            "field > f.name) FROM f WHERE f.name IS NOT NULL) "
            "SELECT name, (SELECT num IS NOT NULL FROM points WHERE measurement = ?1 AND "
            "field = f.name LIMIT 1) FROM f WHERE name IS NOT NULL", [measurement]).fetchall()
        out[measurement] = sorted(str(name) for name, numeric in rows if numeric)
    return out


def dirty(conn: sqlite3.Connection, since: int | None) -> list[Dirty]:
    rows = conn.execute("SELECT pilot, hour, marked_at FROM rollup_dirty WHERE marked_at > ? "
                        "ORDER BY marked_at, pilot, hour",
                        [-(2**63) if since is None else int(since)]).fetchall()
    return [Dirty(str(p), int(h), int(m)) for p, h, m in rows]
