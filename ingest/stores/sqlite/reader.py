"""The SQLite `Reader`: the typed queries of `base.py` as SQL (`sql.py`) on a connection of
its own, so reads proceed while the collector's writer commits (WAL)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

from ingest.model import Point
from ingest.stores.base import (
    Aggregate,
    AggRow,
    DeadLetter,
    Dirty,
    Distinct,
    Histogram,
    HistRow,
    Seen,
    TagFilter,
    ValueRow,
    Values,
)
from ingest.stores.sqlite import sql
from ingest.stores.sqlite.connection import OnConnection

T = TypeVar("T")


class SqliteReader(OnConnection):
    thread_name = "sqlite-reader"

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._conn.run(fn)

    async def measurements(self) -> list[str]:
        return await self._run(sql.measurements)

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        return await self._run(lambda conn: sql.aggregate(conn, query))

    async def distinct(self, query: Distinct) -> list[set[str]]:
        return await self._run(lambda conn: sql.distinct(conn, query))

    async def histogram(self, query: Histogram) -> list[HistRow]:
        return await self._run(lambda conn: sql.histogram(conn, query))

    async def values(self, query: Values) -> list[ValueRow]:
        return await self._run(lambda conn: sql.values(conn, query))

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        return await self._seen(True, measurements, field, start, end, where, by)

    async def first_seen(self, measurements: Sequence[str], field: str, *,
                         start: int | None = None, end: int | None = None,
                         where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        return await self._seen(False, measurements, field, start, end, where, by)

    async def _seen(self, newest: bool, measurements: Sequence[str], field: str,
                    start: int | None, end: int | None, where: TagFilter,
                    by: tuple[str, ...]) -> list[Seen]:
        if not measurements:
            return []
        return await self._run(lambda conn: sql.seen(
            conn, newest, measurements, field, start, end, where, by))

    async def latest(self, measurement: str, *, where: TagFilter = ()) -> list[Point]:
        return await self._run(lambda conn: sql.latest(conn, measurement, where))

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        return await self._run(lambda conn: sql.dead_letters(conn, reason, since, limit))

    async def fields(self) -> dict[str, list[str]]:
        return await self._run(sql.fields)

    async def dirty(self, since: int | None = None) -> list[Dirty]:
        return await self._run(lambda conn: sql.dirty(conn, since))
