"""The collector's SQLite store: points in, one transaction (and one fsync) per write.

Points are refused by the same rules as in the InfluxDB store (both writers use
`lineprotocol.check_shape` and `encode`), so switching stores never changes what is kept.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ingest.model import TAG_KEYS, Point
from ingest.stores.base import RejectedPoint
from ingest.stores.lineprotocol import UnrepresentablePoint, check_shape, encode
from ingest.stores.sqlite.connection import TAGS, OnConnection

_INSERT = (f"INSERT OR REPLACE INTO points (measurement, {TAGS}, ts, field, num, str) "
           f"VALUES ({', '.join('?' * (len(TAG_KEYS) + 5))})")
Row = tuple[Any, ...]


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


class SqliteWriter(OnConnection):
    thread_name = "sqlite-writer"

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
            await self._conn.run(lambda conn: _insert(conn, rows))
        return rejected
