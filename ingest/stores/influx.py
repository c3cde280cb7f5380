"""InfluxDB 1.x store: line protocol on `/write`, InfluxQL on `/query`, over httpx.AsyncClient.

Written on httpx rather than the official `influxdb-client`: that client writes through
`/api/v2/write`, which InfluxDB 1.6 lacks, and its batching runs on threads, not on asyncio.
The caller batches; one `write` is one gzip-compressed request (more above
`max_points_per_request`).

Responses are classified like Telegraf's `plugins/outputs/influxdb/http.go`, except that where
Telegraf drops a batch we bisect it and return exactly the points InfluxDB refuses, for the
caller to dead-letter (re-writing the good half is harmless: writes are idempotent).
- written: 204; "hinted handoff queue not empty" (Enterprise queued the points on disk;
  Telegraf and influxdb-client-js count it as written, a resend only lengthens the queue).
- "database not found": CREATE DATABASE, then the same request again.
- retried: 5xx, 408, 429, timeouts, connection errors, with jittered exponential backoff that
  honours Retry-After (influxdb-client-python's `write/retry.py`) until `deadline_s` after the
  first attempt; then StoreUnavailable.
- refused points: 400 partial write / unable to parse / field type conflict / beyond
  retention policy, 413.
- 401, 403, other 4xx: configuration. Waiting does not fix it, but the collector must not lose
  data: logged as an error and raised as StoreUnavailable, so the batch is spooled.
No httpx exception leaves this module: `_send` translates them, once.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from ingest.model import DEAD_LETTER_MEASUREMENT, Point
from ingest.stores import influxql
from ingest.stores.base import (
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
from ingest.stores.influxql import quote_ident, row_point, where_clause
from ingest.stores.lineprotocol import UnrepresentablePoint, check_shape, encode

log = logging.getLogger(__name__)
T = TypeVar("T")

_REFUSED = ("partial write", "unable to parse", "field type conflict",
            "points beyond retention policy")
_RETRY_STATUS = frozenset({408, 429})
_GROUP_TAGS = ("pilot", "gateway", "device")
_QUERY_REQUESTS = 4  # at most this many concurrent requests for one multi-statement query


class _Kind(Enum):
    WRITTEN = auto()
    RETRY = auto()
    REFUSED = auto()
    NO_DATABASE = auto()
    MISCONFIGURED = auto()


@dataclass(frozen=True, slots=True)
class _Verdict:
    kind: _Kind
    detail: str = ""
    retry_after_s: float | None = None


def classify_write(status: int, error: str, retry_after: str | None = None) -> _Verdict:
    """What a `/write` response means for the batch (see the module docstring)."""
    if status in (200, 204):
        return _Verdict(_Kind.WRITTEN)
    if "database not found" in error:
        return _Verdict(_Kind.NO_DATABASE, error)
    if status == 413 or (status == 400 and any(marker in error for marker in _REFUSED)):
        return _Verdict(_Kind.REFUSED, error or f"HTTP {status}")
    if status >= 500 and "hinted handoff queue not empty" in error:
        return _Verdict(_Kind.WRITTEN, error)
    if status >= 500 or status in _RETRY_STATUS:
        return _Verdict(_Kind.RETRY, f"InfluxDB answered {status}: {error or 'no detail'}",
                        _retry_after_s(retry_after))
    if status in (401, 403):
        return _Verdict(_Kind.MISCONFIGURED, f"InfluxDB refused the credentials ({status}: "
                        f"{error}); check the user, password and privileges in the store URL")
    return _Verdict(_Kind.MISCONFIGURED, f"InfluxDB answered {status}: {error or 'no detail'}; "
                    "check the store URL")


def _retry_after_s(header: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Transient(Exception):
    """A request that may succeed if sent again (no answer, or a retryable answer)."""

    def __init__(self, detail: str, retry_after_s: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class _Budget:
    """How long one logical request may keep failing: jittered exponential backoff whose
    n-th delay is drawn from [base * 2**n, base * 2**(n+1)] (capped), Retry-After taking
    precedence; a wait that would end past the deadline raises StoreUnavailable instead."""

    def __init__(self, seconds: float, base_s: float, cap_s: float) -> None:
        self.seconds, self.base_s, self.cap_s = seconds, base_s, cap_s
        self.end = time.monotonic() + seconds
        self.attempt = 0

    def remaining(self) -> float:
        return self.end - time.monotonic()

    async def wait(self, why: _Transient) -> None:
        if why.retry_after_s is not None:
            delay = why.retry_after_s + random.uniform(0, self.base_s)
        else:
            # Once capped the range is [cap/2, cap]: still jittered, so that collectors
            # that lost the server together do not come back in step.
            low = min(self.base_s * 2**self.attempt, self.cap_s / 2)
            delay = random.uniform(low, min(2 * low, self.cap_s))
        if delay >= self.remaining():
            raise StoreUnavailable(f"{why} (gave up after {self.seconds:g}s)") from None
        log.info("influxdb retry attempt=%d delay_s=%.3f reason=%s", self.attempt + 1, delay, why)
        self.attempt += 1
        await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class _Target:
    base_url: str
    database: str
    auth: httpx.BasicAuth | None
    where: str  # host:port/db for messages: never the credentials


def parse_url(url: str) -> _Target:
    """`influxdb://user:pass@host:8086/dbname` (`influxdbs://` for TLS)."""
    parts = urlsplit(url)
    scheme = {"influxdb": "http", "influxdbs": "https"}.get(parts.scheme)
    if scheme is None:
        raise StoreConfigError("InfluxDB store URL must start with influxdb:// or influxdbs://")
    try:
        host, port = parts.hostname, parts.port or 8086
    except ValueError:
        raise StoreConfigError("InfluxDB store URL has an invalid port") from None
    database = unquote(parts.path[1:])
    if not host or not database or "/" in parts.path[1:] or parts.query or parts.fragment:
        raise StoreConfigError("InfluxDB store URL must look like "
                               "influxdb://user:pass@host:8086/dbname")
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    auth = None
    if parts.username is not None:
        auth = httpx.BasicAuth(unquote(parts.username), unquote(parts.password or ""))
    return _Target(f"{scheme}://{netloc}", database, auth, f"{netloc}/{database}")


class InfluxStore:
    """The production store; see the module docstring for the error semantics."""

    def __init__(self, url: str, *, deadline_s: float = 5.0, request_timeout_s: float = 10.0,
                 backoff_s: float = 0.05, max_backoff_s: float = 1.0,
                 max_points_per_request: int = 5000) -> None:
        self._target = parse_url(url)
        self.url_scheme = urlsplit(url).scheme
        self.database = self._target.database
        self._deadline_s, self._request_timeout_s = deadline_s, request_timeout_s
        self._backoff_s, self._max_backoff_s = backoff_s, max_backoff_s
        self._max_points = max(1, max_points_per_request)
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> Self:
        self._client = httpx.AsyncClient(base_url=self._target.base_url, auth=self._target.auth)
        try:
            # One attempt only: the collector must start (and spool) while InfluxDB is down;
            # the first write creates the database if this did not.
            await self.ensure_database(deadline_s=0.0)
        except StoreUnavailable as exc:
            log.warning("influxdb database not ensured at start where=%s error=%s",
                        self._target.where, exc)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def ensure_database(self, deadline_s: float | None = None) -> None:
        """CREATE DATABASE (a no-op when it exists); StoreUnavailable when that fails."""
        await self._retrying(self._create_database, self._budget(deadline_s))

    async def ping(self) -> None:
        try:
            resp = await self._send("GET", "/ping", self._budget())  # one attempt
        except _Transient as exc:
            raise StoreUnavailable(str(exc)) from None
        if resp.status_code != 204:
            raise StoreUnavailable(f"InfluxDB ping at {self._target.where} answered "
                                   f"{resp.status_code}")

    async def write(self, points: Sequence[Point]) -> list[RejectedPoint]:
        rejected: list[RejectedPoint] = []
        lines: list[tuple[Point, bytes]] = []
        for point in points:
            try:
                check_shape(point)
                lines.append((point, encode(point)))
            except UnrepresentablePoint as exc:
                rejected.append(RejectedPoint(point, str(exc)))
        for start in range(0, len(lines), self._max_points):
            rejected += await self._write_batch(lines[start:start + self._max_points])
        return rejected

    async def _write_batch(self, batch: list[tuple[Point, bytes]]) -> list[RejectedPoint]:
        verdict = await self._post_lines([line for _, line in batch])
        if verdict.kind is _Kind.WRITTEN:
            return []
        if len(batch) == 1:
            log.warning("influxdb refused point measurement=%s ts=%d detail=%s",
                        batch[0][0].measurement, batch[0][0].ts, verdict.detail)
            return [RejectedPoint(batch[0][0], verdict.detail)]
        # Halve until each refused point stands alone; the accepted halves are stored.
        middle = len(batch) // 2
        return await self._write_batch(batch[:middle]) + await self._write_batch(batch[middle:])

    async def _post_lines(self, lines: list[bytes]) -> _Verdict:
        # Level 1: 0.4 instead of 1.7 µs of the collector's CPU per point, for 18 instead of
        # 12 bytes per point on the wire (bench/README.md); CPU is the scarcer here.
        body = gzip.compress(b"\n".join(lines), compresslevel=1)
        verdict = await self._retrying(lambda budget: self._post_once(body, budget),
                                       self._budget())
        if verdict.kind is _Kind.MISCONFIGURED:
            log.error("influxdb write impossible where=%s detail=%s", self._target.where,
                      verdict.detail)
            raise StoreUnavailable(verdict.detail)
        if verdict.detail and verdict.kind is _Kind.WRITTEN:
            log.warning("influxdb write accepted with note detail=%s", verdict.detail)
        return verdict

    async def _post_once(self, body: bytes, budget: _Budget) -> _Verdict:
        resp = await self._send("POST", "/write", budget, content=body,
                                params={"db": self.database, "precision": "ns"},
                                headers={"Content-Encoding": "gzip",
                                         "Content-Type": "text/plain; charset=utf-8"})
        verdict = classify_write(resp.status_code, _error_text(resp),
                                 resp.headers.get("Retry-After"))
        if verdict.kind is _Kind.RETRY:
            raise _Transient(verdict.detail, verdict.retry_after_s)
        if verdict.kind is _Kind.NO_DATABASE:
            log.info("influxdb creating missing database where=%s", self._target.where)
            await self._create_database(budget)
            raise _Transient("database created", retry_after_s=0.0)  # now send it again
        return verdict

    async def _create_database(self, budget: _Budget) -> None:
        resp = await self._send("POST", "/query", budget,
                                data={"q": f"CREATE DATABASE {quote_ident(self.database)}"})
        self._raise_for_query(resp)
        error = _first_result(resp).get("error")
        if error:
            raise StoreUnavailable(f"cannot create InfluxDB database {self.database!r}: {error}")

    async def _send(self, method: str, path: str, budget: _Budget, **kwargs: Any
                    ) -> httpx.Response:
        """One HTTP request; every httpx exception becomes _Transient (or StoreError)."""
        if self._client is None:
            raise StoreError("InfluxStore used outside `async with`")
        timeout = min(self._request_timeout_s, max(budget.remaining(), 0.5))
        try:
            return await self._client.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException:
            raise _Transient(f"InfluxDB at {self._target.where} did not answer within "
                             f"{timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise _Transient(f"cannot reach InfluxDB at {self._target.where}: "
                             f"{type(exc).__name__}: {exc}") from None

    async def _retrying(self, call: Callable[[_Budget], Awaitable[T]], budget: _Budget) -> T:
        while True:
            try:
                return await call(budget)
            except _Transient as exc:
                await budget.wait(exc)

    def _budget(self, deadline_s: float | None = None) -> _Budget:
        seconds = self._deadline_s if deadline_s is None else deadline_s
        return _Budget(seconds, self._backoff_s, self._max_backoff_s)

    def _raise_for_query(self, resp: httpx.Response) -> None:
        status, error = resp.status_code, _error_text(resp)
        if status >= 500 or status in _RETRY_STATUS:
            raise _Transient(f"InfluxDB answered {status}: {error}",
                             _retry_after_s(resp.headers.get("Retry-After")))
        if status in (401, 403):
            detail = classify_write(status, error).detail
            log.error("influxdb access refused where=%s detail=%s", self._target.where, detail)
            raise StoreUnavailable(detail)
        if status != 200:
            raise StoreError(f"InfluxDB refused a query ({status}): {error}")

    async def _query(self, influxql: str) -> list[dict[str, Any]]:
        """The series of one InfluxQL statement; none when the database does not exist yet."""
        async def once(budget: _Budget) -> httpx.Response:
            resp = await self._send("POST", "/query", budget,
                                    data={"q": influxql, "db": self.database, "epoch": "ns"})
            self._raise_for_query(resp)
            return resp

        result = _first_result(await self._retrying(once, self._budget()))
        error = result.get("error")
        if error and "database not found" in str(error):
            return []
        if error:
            raise StoreError(f"InfluxDB query failed: {error}")
        series = result.get("series", [])
        return series if isinstance(series, list) else []

    async def _values(self, influxql: str) -> list[list[Any]]:
        """The rows of a statement that yields at most one series."""
        series = await self._query(influxql)
        return list(series[0].get("values", [])) if series else []

    async def series(self, query: SeriesQuery) -> list[tuple[int, float]]:
        every_ns = round(query.every_s * 1e9)
        if every_ns < 1:
            raise ValueError(f"every_s must be positive, got {query.every_s}")
        where = where_clause(query.start, query.end, pilot=query.pilot,
                             gateway=query.gateway, device=query.device)
        values = await self._values(
            f"SELECT {query.agg.value}({quote_ident(query.field)}) "
            f"FROM {quote_ident(query.measurement)}{where} "
            f"GROUP BY time({every_ns}ns) fill(none)")
        return [(int(t), float(v)) for t, v in values if v is not None]

    async def latest(self, measurement: str, *, pilot: str | None = None,
                     gateway: str | None = None, device: str | None = None) -> list[Point]:
        # Not last(*): it takes each field's own last value, possibly from different points.
        group = ",".join(quote_ident(t) for t in _GROUP_TAGS)
        rows = await self._query(
            f"SELECT * FROM {quote_ident(measurement)}"
            f"{where_clause(None, None, pilot=pilot, gateway=gateway, device=device)}"
            f" GROUP BY {group} ORDER BY time DESC LIMIT 1")
        points = [row_point(measurement, s) for s in rows if s.get("values")]
        return sorted(points, key=lambda p: (p.tag("pilot"), p.tag("gateway"), p.tag("device")))

    async def count(self, measurement: str, field: str, *, start: int | None = None,
                    end: int | None = None, pilot: str | None = None,
                    gateway: str | None = None, device: str | None = None) -> int:
        values = await self._values(
            f"SELECT count({quote_ident(field)}) FROM {quote_ident(measurement)}"
            f"{where_clause(start, end, pilot=pilot, gateway=gateway, device=device)}")
        return int(values[0][1]) if values else 0

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        if limit <= 0:
            return []
        values = await self._values(
            f'SELECT "topic","payload","detail","reason" FROM '
            f"{quote_ident(DEAD_LETTER_MEASUREMENT)}{where_clause(since, None, reason=reason)} "
            f"ORDER BY time DESC LIMIT {int(limit)}")
        return [DeadLetter(ts=int(row[0]), topic=row[1] or "", payload=row[2] or "",
                           detail=row[3] or "", reason=row[4] or "") for row in values]


    # The read side of the API and the KPIs: statements from `influxql`, sent together.

    async def _results(self, statements: Sequence[str]) -> list[list[dict[str, Any]]]:
        """The series of each statement. InfluxDB runs the statements of one request one
        after the other, so many go as a few concurrent requests (`;`-separated)."""
        size = max(8, -(-len(statements) // _QUERY_REQUESTS))
        chunks = [statements[i:i + size] for i in range(0, len(statements), size)]
        answers = await asyncio.gather(*(self._statements(c) for c in chunks))
        return [series for answer in answers for series in answer]

    async def _statements(self, statements: Sequence[str]) -> list[list[dict[str, Any]]]:
        async def once(budget: _Budget) -> httpx.Response:
            resp = await self._send("POST", "/query", budget, data={
                "q": ";\n".join(statements), "db": self.database, "epoch": "ns"})
            self._raise_for_query(resp)
            return resp

        resp = await self._retrying(once, self._budget())
        return influxql.statement_results(resp.content, len(statements))

    async def measurements(self) -> list[str]:
        [series] = await self._results(["SHOW MEASUREMENTS"])
        return influxql.measurement_names(series)

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        statements, plan = influxql.aggregate_statements(query)
        return influxql.aggregate_rows(query, plan, await self._results(statements))

    async def distinct(self, query: Distinct) -> list[set[str]]:
        statements, plan = influxql.distinct_statements(query)
        return influxql.distinct_sets(query, plan, await self._results(statements))

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = ()) -> list[Seen]:
        if not measurements:
            return []
        [series] = await self._results([influxql.last_seen_statement(
            measurements, field, start, end, where)])
        return influxql.seen_rows(series)


def _error_text(resp: httpx.Response) -> str:
    """InfluxDB's error message: the JSON `error`, else its header, else the body's start."""
    try:
        error = resp.json().get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, str) else (
        resp.headers.get("X-Influxdb-Error") or resp.text[:500])


def _first_result(resp: httpx.Response) -> dict[str, Any]:
    try:
        body = resp.json()
        result = body["results"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        raise StoreError(f"InfluxDB sent an unexpected answer: {resp.text[:200]!r}") from None
    return result if isinstance(result, dict) else {}
