"""SQLite store: the embedded default, with InfluxDB's series identity and merge semantics.

One long table, a row per (series, field, time). A series is the measurement plus the six tag
keys citypilot writes (an absent tag is ''), as in InfluxDB; the primary key is that identity
plus field and time, so rewriting a point replaces the fields it carries and keeps the others:
InfluxDB's merge. Points are refused by the same rules as in the InfluxDB store (they share
`lineprotocol.encode` and `check_shape`), so switching stores never changes what is kept.
Unlike InfluxDB, a field may hold a number in one point and a string in another.

Durability: "acknowledged = durable". The collector acknowledges a message to the broker as
soon as `write` returns, so the commit must survive a power cut, which is common for a Pi on
an SD card: WAL with `synchronous=FULL` (fsync at every commit). `NORMAL` in WAL mode is only
safe against a crash of the process: the last commits can roll back after a power loss. The
caller batches, so this costs one fsync per batch.

sqlite3 blocks, so each connection lives on its own single worker thread: one writer and one
reader (WAL lets reads proceed while a write commits). sqlite3 exceptions are translated at
that boundary; none leaves this module.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import unquote, urlsplit

from ingest.model import DEAD_LETTER_MEASUREMENT, TAG_KEYS, FieldValue, Point
from ingest.stores import sqlite_queries
from ingest.stores.base import (
    Agg,
    Aggregate,
    AggRow,
    DeadLetter,
    Distinct,
    RejectedPoint,
    Seen,
    SeriesQuery,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
    TagFilter,
)
from ingest.stores.lineprotocol import UnrepresentablePoint, check_shape, encode

log = logging.getLogger(__name__)
T = TypeVar("T")

_TAGS = ", ".join(TAG_KEYS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    {" ".join(f"{tag} TEXT NOT NULL DEFAULT ''," for tag in TAG_KEYS)}
    ts INTEGER NOT NULL,
    field TEXT NOT NULL,
    num REAL,
    str TEXT,
    PRIMARY KEY (measurement, {_TAGS}, field, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_field_time ON points (measurement, field, ts);
CREATE INDEX IF NOT EXISTS points_device_time ON points (measurement, pilot, gateway, device, ts);
"""
_INSERT = (f"INSERT OR REPLACE INTO points (measurement, {_TAGS}, ts, field, num, str) "
           f"VALUES ({', '.join('?' * (len(TAG_KEYS) + 5))})")
_AGG_SQL = {Agg.MEAN: "AVG(num)", Agg.MIN: "MIN(num)", Agg.MAX: "MAX(num)",
            Agg.SUM: "SUM(num)", Agg.COUNT: "COUNT(*)"}
# Errors that mean our SQL or arguments are wrong, not that the database is unwell.
_BUGS = (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.IntegrityError,
         sqlite3.DataError, sqlite3.NotSupportedError)
Row = tuple[Any, ...]


def parse_url(url: str) -> Path:
    """`sqlite:///path/to/file.db` (relative) or `sqlite:////abs/file.db`, as SQLAlchemy."""
    parts = urlsplit(url)
    path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
    if parts.scheme != "sqlite" or parts.netloc or not path or parts.query or parts.fragment:
        raise StoreConfigError("SQLite store URL must look like sqlite:///path/to/file.db")
    return Path(path)


def _translate(exc: sqlite3.Error) -> StoreError:
    name = getattr(exc, "sqlite_errorname", type(exc).__name__)
    if isinstance(exc, _BUGS):
        return StoreError(f"SQLite rejected a statement ({name}): {exc}")
    # busy, locked, I/O error, disk full, read-only, corrupt...: the data must wait (spooled).
    return StoreUnavailable(f"SQLite store unavailable ({name}): {exc}")


class _Connection:
    """One sqlite3 connection, opened and used on its own single thread."""

    def __init__(self, path: Path, name: str, busy_timeout_s: float) -> None:
        self._path, self._timeout = path, busy_timeout_s
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._conn: sqlite3.Connection | None = None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._conn is None:
                # Autocommit: transactions are begun and ended explicitly in `_insert`.
                conn = sqlite3.connect(self._path, timeout=self._timeout, isolation_level=None)
                conn.execute("PRAGMA synchronous=FULL")
                self._conn = conn
            return fn(self._conn)
        except sqlite3.Error as exc:
            raise _translate(exc) from exc

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, close)
        except sqlite3.Error as exc:
            log.warning("sqlite close failed path=%s error=%s", self._path, exc)
        finally:
            self._executor.shutdown(wait=False)


def _setup(conn: sqlite3.Connection) -> None:
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        log.warning("sqlite journal mode is not WAL mode=%s", mode)
    conn.executescript(_SCHEMA)


def _insert(conn: sqlite3.Connection, rows: list[Row]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_INSERT, rows)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _rows(point: Point) -> list[Row]:
    tags = dict(point.tags)
    identity = (point.measurement, *(tags.get(k, "") for k in TAG_KEYS), point.ts)
    return [(*identity, name, None, value) if isinstance(value, str)
            else (*identity, name, float(value), None) for name, value in point.fields.items()]


def _filters(pilot: str | None, gateway: str | None, device: str | None,
             start: int | None = None, end: int | None = None) -> tuple[str, list[Any]]:
    sql, args = "", list[Any]()
    for column, value in (("pilot", pilot), ("gateway", gateway), ("device", device)):
        if value is not None:
            sql += f" AND {column} = ?"
            args.append(value)
    if start is not None:
        sql, args = sql + " AND ts >= ?", [*args, int(start)]
    if end is not None:
        sql, args = sql + " AND ts < ?", [*args, int(end)]
    return sql, args


class SqliteStore:
    url_scheme = "sqlite"

    def __init__(self, url: str, *, deadline_s: float = 5.0,
                 busy_timeout_s: float | None = None) -> None:
        """`deadline_s`: how long a call waits for a lock (SQLite's busy timeout) before
        StoreUnavailable, the same option as the InfluxDB store's; `busy_timeout_s` is
        accepted as another name for it."""
        self.path = parse_url(url)
        self._deadline_s = deadline_s if busy_timeout_s is None else busy_timeout_s
        self._writer: _Connection | None = None
        self._reader: _Connection | None = None

    async def __aenter__(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(f"cannot create the directory of the SQLite store "
                                   f"{self.path}: {exc.strerror}") from None
        self._writer = _Connection(self.path, "sqlite-writer", self._deadline_s)
        self._reader = _Connection(self.path, "sqlite-reader", self._deadline_s)
        try:
            await self._writer.run(_setup)
        except StoreError as exc:
            await self.__aexit__(None, None, None)
            raise StoreConfigError(f"cannot open the SQLite store {self.path}: {exc}") from None
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        for conn in (self._writer, self._reader):
            if conn is not None:
                await conn.close()
        self._writer = self._reader = None

    async def ping(self) -> None:
        await self._read(lambda conn: conn.execute("SELECT 1").fetchall())

    async def write(self, points: Sequence[Point]) -> list[RejectedPoint]:
        rejected: list[RejectedPoint] = []
        rows: list[Row] = []
        for point in points:
            try:
                check_shape(point)
                encode(point)  # the same refusals as the InfluxDB store
            except UnrepresentablePoint as exc:
                rejected.append(RejectedPoint(point, str(exc)))
                continue
            rows += _rows(point)
        if rows:
            if self._writer is None:
                raise StoreError("SqliteStore used outside `async with`")
            await self._writer.run(lambda conn: _insert(conn, rows))
        return rejected

    async def _read(self, fn: Callable[[sqlite3.Connection], list[Row]]) -> list[Row]:
        if self._reader is None:
            raise StoreError("SqliteStore used outside `async with`")
        return await self._reader.run(fn)

    async def _select(self, sql: str, args: Sequence[Any]) -> list[Row]:
        return await self._read(lambda conn: conn.execute(sql, args).fetchall())

    async def series(self, query: SeriesQuery) -> list[tuple[int, float]]:
        every = round(query.every_s * 1e9)
        if every < 1:
            raise ValueError(f"every_s must be positive, got {query.every_s}")
        where, args = _filters(query.pilot, query.gateway, query.device, query.start, query.end)
        # Buckets aligned to the epoch, as InfluxQL's GROUP BY time; the double modulo floors
        # for times before 1970 too (SQLite's % truncates toward zero).
        rows = await self._select(
            f"SELECT ts - ((ts % ?) + ?) % ? AS bucket, {_AGG_SQL[query.agg]} AS value "
            f"FROM points WHERE measurement = ? AND field = ?{where} "
            "GROUP BY bucket HAVING value IS NOT NULL ORDER BY bucket",
            [every, every, every, query.measurement, query.field, *args])
        return [(int(bucket), float(value)) for bucket, value in rows]

    async def latest(self, measurement: str, *, pilot: str | None = None,
                     gateway: str | None = None, device: str | None = None) -> list[Point]:
        where, args = _filters(pilot, gateway, device)
        rows = await self._select(
            "WITH newest AS (SELECT pilot, gateway, device, MAX(ts) AS ts FROM points "
            f"WHERE measurement = ?{where} GROUP BY pilot, gateway, device) "
            f"SELECT {', '.join('p.' + k for k in TAG_KEYS)}, p.ts, p.field, p.num, p.str "
            "FROM points p JOIN newest n ON p.pilot = n.pilot AND p.gateway = n.gateway "
            "AND p.device = n.device AND p.ts = n.ts WHERE p.measurement = ? "
            f"ORDER BY {', '.join('p.' + k for k in TAG_KEYS)}, p.field",
            [measurement, *args, measurement])
        return _points(measurement, rows)

    async def count(self, measurement: str, field: str, *, start: int | None = None,
                    end: int | None = None, pilot: str | None = None,
                    gateway: str | None = None, device: str | None = None) -> int:
        where, args = _filters(pilot, gateway, device, start, end)
        rows = await self._select(
            f"SELECT COUNT(*) FROM points WHERE measurement = ? AND field = ?{where}",
            [measurement, field, *args])
        return int(rows[0][0])

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        where, args = _filters(None, None, None, since)
        if reason is not None:
            where, args = where + " AND reason = ?", [*args, reason]
        pick = ", ".join(f"MAX(CASE WHEN field = '{f}' THEN str END)"
                         for f in ("topic", "payload", "detail"))
        rows = await self._select(
            f"SELECT ts, reason, {pick} FROM points WHERE measurement = ?{where} "
            f"GROUP BY {_TAGS}, ts ORDER BY ts DESC, reason LIMIT ?",
            [DEAD_LETTER_MEASUREMENT, *args, int(limit)])
        return [DeadLetter(ts=int(ts), reason=reason_, topic=topic or "", payload=payload or "",
                           detail=detail or "")
                for ts, reason_, topic, payload, detail in rows]


    # The read side of the API and the KPIs: SQL in `sqlite_queries`, run on the reader.

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._reader is None:
            raise StoreError("SqliteStore used outside `async with`")
        return await self._reader.run(fn)

    async def measurements(self) -> list[str]:
        return await self._run(sqlite_queries.measurements)

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        return await self._run(lambda conn: sqlite_queries.aggregate(conn, query))

    async def distinct(self, query: Distinct) -> list[set[str]]:
        return await self._run(lambda conn: sqlite_queries.distinct(conn, query))

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = ()) -> list[Seen]:
        if not measurements:
            return []
        return await self._run(lambda conn: sqlite_queries.last_seen(
            conn, measurements, field, start, end, where))


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
