"""The collector's SQLite store: points in, one transaction (and one fsync) per write.

The transaction also marks the (pilot, hour) slots it writes into (`rollup_dirty`), so the
rollup worker recomputes exactly those, whoever wrote: collector, replay or backfill.

Points are refused by the same rules as in the InfluxDB store (both writers use
`lineprotocol.check_shape` and `encode`), so switching stores never changes what is kept.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from ingest.model import TAG_KEYS, Point
from ingest.stores.base import RejectedPoint, dirty_slots
from ingest.stores.lineprotocol import UnrepresentablePoint, check_shape, encode
from ingest.stores.sqlite.connection import TAGS, OnConnection

_INSERT = (f"INSERT OR REPLACE INTO points (measurement, {TAGS}, ts, field, num, str) "
           f"VALUES ({', '.join('?' * (len(TAG_KEYS) + 5))})")
Row = tuple[Any, ...]


_MARK = ("INSERT INTO rollup_dirty (pilot, hour, marked_at) VALUES (?, ?, ?) "
         "ON CONFLICT (pilot, hour) DO UPDATE SET marked_at = excluded.marked_at")


def _insert(conn: sqlite3.Connection, rows: list[Row], marks: list[Row]) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany(_MARK, marks)
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


class SqliteWriter(OnConnection):
    """`mark_dirty`: record the slots written into (off for the rollups' own store)."""

    thread_name = "sqlite-writer"

    def __init__(self, url: str, *, mark_dirty: bool = True, **options: Any) -> None:
        super().__init__(url, **options)
        self.mark_dirty = mark_dirty

    async def write(self, points: Sequence[Point]) -> list[RejectedPoint]:
        rejected: list[RejectedPoint] = []
        rows: list[Row] = []
        kept: list[Point] = []
        for point in points:
            try:
                check_shape(point)
                encode(point)  # the same refusals as the InfluxDB store
            except UnrepresentablePoint as exc:
                rejected.append(RejectedPoint(point, str(exc)))
                continue
            rows += _rows(point)
            kept.append(point)
        now = time.time_ns()
        marks = [(pilot, hour, now) for pilot, hour in dirty_slots(kept)] \
            if self.mark_dirty else []
        if rows:
            await self._conn.run(lambda conn: _insert(conn, rows, marks))
        return rejected
