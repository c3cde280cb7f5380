"""The collector's InfluxDB store: points as gzip-compressed line protocol on `/write`.

The caller batches; one `write` is one request (more above `max_points_per_request`). Where
Telegraf drops a refused batch, this bisects it and returns exactly the points InfluxDB
refuses, for the caller to dead-letter (re-writing the good half is harmless: writes are
idempotent); a part of which a partial write dropped every point for a field type conflict
is not split further (each point would be refused alone). A
request refused as too large (413) is split the same way, and later requests are made
smaller. What each answer means is decided in `http.py`.

Before a batch goes out, the (pilot, hour) slots it writes into are marked in the rollup
database (`naming.py`), so that the rollup worker recomputes them: marked first, because a
mark without data only costs a recompute while data without a mark would be missed. A slot
is marked again at most every `MARK_EVERY_NS` (the worker allows for that lag).
"""

from __future__ import annotations

import gzip
import logging
import re
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from ingest.model import Point
from ingest.stores import naming
from ingest.stores.base import DIRTY_MEASUREMENT, RejectedPoint, StoreUnavailable, dirty_slots
from ingest.stores.influx.http import (
    Budget,
    Kind,
    OverHttp,
    Transient,
    Verdict,
    classify_write,
    dropped_points,
    error_text,
)
from ingest.stores.lineprotocol import UnrepresentablePoint, check_shape, encode

log = logging.getLogger(__name__)
MARK_EVERY_NS = 5 * 10**9
# Refusals that each point earns alone: when a partial write dropped every point for one of
# these, each would be refused alone too. Not so for the series and tag-value limits, which
# InfluxDB checks per request (30 points of 3 new series exceed a limit of 6): split those.
_POINTWISE = ("partial write: field type conflict", "partial write: points beyond retention")
_CONFLICT_IN = re.compile(r'on measurement "((?:[^"\\]|\\.)*)"')


class InfluxWriter(OverHttp):
    """The production `Store`; see `http.py` for the error semantics."""

    def __init__(self, url: str, *, deadline_s: float = 5.0, request_timeout_s: float = 10.0,
                 backoff_s: float = 0.05, max_backoff_s: float = 1.0,
                 max_points_per_request: int = 5000, mark_dirty: bool = True) -> None:
        super().__init__(url, deadline_s=deadline_s, request_timeout_s=request_timeout_s,
                         backoff_s=backoff_s, max_backoff_s=max_backoff_s)
        self._max_points = max(1, max_points_per_request)
        self._marks = InfluxWriter(naming.rollup_url(url), deadline_s=deadline_s,
                                   request_timeout_s=request_timeout_s, backoff_s=backoff_s,
                                   max_backoff_s=max_backoff_s, mark_dirty=False) \
            if mark_dirty else None
        self._marked: dict[tuple[str, int], int] = {}  # slot -> when last marked

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        if self._marks is not None:
            await self._marks.__aenter__()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._marks is not None:
            await self._marks.__aexit__(et, e, tb)
        await super().__aexit__(et, e, tb)

    async def _mark(self, points: Sequence[Point]) -> None:
        now = time.time_ns()
        due = [slot for slot in dirty_slots(points)
               if now - self._marked.get(slot, -MARK_EVERY_NS) >= MARK_EVERY_NS]
        if not due or self._marks is None:
            return
        refused = await self._marks.write([
            Point(DIRTY_MEASUREMENT, (("pilot", pilot),), {"marked_at": float(now)}, hour)
            for pilot, hour in due])
        if refused:
            raise StoreUnavailable(f"the rollup database refused a dirty mark: "
                                   f"{refused[0].detail}")
        if len(self._marked) > 10_000:
            self._marked = {k: v for k, v in self._marked.items()
                            if now - v < MARK_EVERY_NS}
        self._marked.update(dict.fromkeys(due, now))

    async def write(self, points: Sequence[Point]) -> list[RejectedPoint]:
        rejected: list[RejectedPoint] = []
        lines: list[tuple[Point, bytes]] = []
        for point in points:
            try:
                check_shape(point)
                lines.append((point, encode(point)))
            except UnrepresentablePoint as exc:
                rejected.append(RejectedPoint(point, str(exc)))
        await self._mark([point for point, _ in lines])
        for start in range(0, len(lines), self._max_points):
            rejected += await self._write_batch(lines[start:start + self._max_points])
        return rejected

    async def _write_batch(self, batch: list[tuple[Point, bytes]]) -> list[RejectedPoint]:
        verdict = await self._post_lines([line for _, line in batch])
        if verdict.kind is Kind.WRITTEN:
            return []
        if verdict.kind is Kind.TOO_LARGE and len(batch) >= self._max_points > 1:
            self._max_points = max(1, len(batch) // 2)  # the next requests start smaller
            log.warning("influxdb request too large; now at most %d points a request: %s",
                        self._max_points, verdict.detail)
        detail, dropped = dropped_points(verdict.detail)
        if len(batch) == 1 or (dropped >= len(batch) and detail.startswith(_POINTWISE)):
            log.warning("influxdb refused %d points measurement=%s ts=%d detail=%s",
                        len(batch), batch[0][0].measurement, batch[0][0].ts, detail)
            return [RejectedPoint(point, detail) for point, _ in batch]
        # Split until each refused point stands alone; the accepted parts are stored. A field
        # type conflict names its measurement: that measurement's points apart first (mixed
        # batches would otherwise bisect down to single points), else halves.
        named = _CONFLICT_IN.search(detail) if detail.startswith(_POINTWISE) else None
        first = [line for line in batch if named and line[0].measurement == named.group(1)]
        rest = [line for line in batch if not named or line[0].measurement != named.group(1)]
        if not first or not rest:
            first, rest = batch[:len(batch) // 2], batch[len(batch) // 2:]
        return await self._write_batch(first) + await self._write_batch(rest)

    async def _post_lines(self, lines: list[bytes]) -> Verdict:
        # Level 1: 0.4 instead of 1.7 µs of the collector's CPU per point, for 18 instead of
        # 12 bytes per point on the wire (bench/README.md); CPU is the scarcer here.
        body = gzip.compress(b"\n".join(lines), compresslevel=1)
        verdict = await self._http.retrying(lambda budget: self._post_once(body, budget),
                                            self._http.budget())
        if verdict.kind is Kind.MISCONFIGURED:
            log.error("influxdb write impossible where=%s detail=%s", self._http.target.where,
                      verdict.detail)
            raise StoreUnavailable(verdict.detail)
        if verdict.detail and verdict.kind is Kind.WRITTEN:
            log.warning("influxdb write accepted with note detail=%s", verdict.detail)
        return verdict

    async def _post_once(self, body: bytes, budget: Budget) -> Verdict:
        resp = await self._http.send("POST", "/write", budget, content=body,
                                     params={"db": self.database, "precision": "ns"},
                                     headers={"Content-Encoding": "gzip",
                                              "Content-Type": "text/plain; charset=utf-8"})
        verdict = classify_write(resp.status_code, error_text(resp),
                                 resp.headers.get("Retry-After"))
        if verdict.kind is Kind.RETRY:
            raise Transient(verdict.detail, verdict.retry_after_s)
        if verdict.kind is Kind.NO_DATABASE:
            log.warning("influxdb database not found (dropped while running?); creating it "
                        "again where=%s", self._http.target.where)
            await self._http.create_database(budget)
            raise Transient("database created", retry_after=0.0)  # now send it again
        return verdict
