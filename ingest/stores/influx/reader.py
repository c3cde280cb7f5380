"""The InfluxDB `Reader`: the typed queries of `base.py` as InfluxQL on `/query`.

The statements come from `influxql.py` and go to InfluxDB together (a few `;`-separated
requests, see `InfluxHttp.results`); retries and error translation are `http.py`'s.
`influxql` also runs a statement written elsewhere (the dashboards' panel queries, which
`citypilot dashboards check` runs), with the same retries and the same two error kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.model import Point
from ingest.stores import naming
from ingest.stores.base import (
    DIRTY_MEASUREMENT,
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
from ingest.stores.influx import influxql
from ingest.stores.influx.http import OverHttp


class InfluxReader(OverHttp):
    """A read's one request may take its whole deadline by default: a query that outlasted
    a shorter timeout takes as long again when sent again (a rollup rebuild's week of
    history on a busy server timed out at 10 s twelve times over and gave up)."""

    def __init__(self, url: str, *, deadline_s: float = 5.0,
                 request_timeout_s: float | None = None, **options: Any) -> None:
        super().__init__(url, deadline_s=deadline_s, request_timeout_s=deadline_s
                         if request_timeout_s is None else request_timeout_s, **options)

    async def _one(self, statement: str) -> list[influxql.Series]:
        [series] = await self._http.results([statement])
        return series

    async def influxql(self, statement: str, *, db: str | None = None
                       ) -> list[influxql.Series]:
        """The series InfluxDB answers to one InfluxQL statement, as it sends them (`name`,
        `tags`, `columns`, `values`; times in ns), in database `db` (default the URL's).
        A statement InfluxDB refuses is StoreRejected; no answer is StoreUnavailable; a
        database that does not exist answers no series."""
        [series] = await self._http.results([statement], db)
        return series

    async def measurements(self) -> list[str]:
        return influxql.measurement_names(await self._one("SHOW MEASUREMENTS"))

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        statements, plan = influxql.aggregate_statements(query)
        return influxql.aggregate_rows(query, plan, await self._http.results(statements))

    async def distinct(self, query: Distinct) -> list[set[str]]:
        statements, plan = influxql.distinct_statements(query)
        return influxql.distinct_sets(query, plan, await self._http.results(statements))

    async def histogram(self, query: Histogram) -> list[HistRow]:
        statements = influxql.histogram_statements(query)
        return influxql.histogram_rows(query, await self._http.results(statements))

    async def values(self, query: Values) -> list[ValueRow]:
        return influxql.value_rows(await self._one(influxql.values_statement(query)))

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        return await self._seen("last", measurements, field, start, end, where, by)

    async def first_seen(self, measurements: Sequence[str], field: str, *,
                         start: int | None = None, end: int | None = None,
                         where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        return await self._seen("first", measurements, field, start, end, where, by)

    async def _seen(self, selector: str, measurements: Sequence[str], field: str,
                    start: int | None, end: int | None, where: TagFilter,
                    by: tuple[str, ...]) -> list[Seen]:
        if not measurements:
            return []
        return influxql.seen_rows(await self._one(influxql.seen_statement(
            selector, measurements, field, start, end, where, by)), by)

    async def latest(self, measurement: str, *, where: TagFilter = ()) -> list[Point]:
        return influxql.latest_points(
            measurement, await self._one(influxql.latest_statement(measurement, where)))

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        return influxql.dead_letter_rows(
            await self._one(influxql.dead_letters_statement(reason, since, limit)))

    async def fields(self) -> dict[str, list[str]]:
        return influxql.numeric_fields(await self._one("SHOW FIELD KEYS"))

    async def dirty(self, since: int | None = None) -> list[Dirty]:
        # The writer keeps its marks beside the rollups, not among the raw measurements.
        [series] = await self._http.results(
            [influxql.dirty_statement(DIRTY_MEASUREMENT, since)],
            naming.rollup_database(self.database))
        return influxql.dirty_rows(series)
