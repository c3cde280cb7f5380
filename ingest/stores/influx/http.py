"""InfluxDB 1.x over HTTP: the transport that the writer and the reader share, the
classification of its answers, and the retry policy.

Written on httpx.AsyncClient rather than the official `influxdb-client`: that client writes
through `/api/v2/write`, which InfluxDB 1.6 lacks, and its batching runs on threads, not on
asyncio.

`/write` answers are classified like Telegraf's `plugins/outputs/influxdb/http.go` (the writer
bisects where Telegraf drops a batch):
- written: 204; "hinted handoff queue not empty" (Enterprise queued the points on disk;
  Telegraf and influxdb-client-js count it as written, a resend only lengthens the queue).
- "database not found": CREATE DATABASE, then the same request again (also when the database
  was dropped while the collector runs: logged as a warning, what was in it is gone).
- retried: 5xx, 408, 429, timeouts, connection errors, with jittered exponential backoff that
  honours Retry-After (influxdb-client-python's `write/retry.py`; `retry_delay_s` is the pure
  policy) until `deadline_s` after the first attempt; then StoreUnavailable.
- refused points: 400 partial write (field type conflict, max-values-per-tag,
  max-series-per-database) / unable to parse / beyond retention policy; `dropped_points`
  reads how many a partial write dropped.
- too large: 413 (`max-body-size`, or a proxy's body limit): the writer splits the request.
- 401, 403, other 4xx: configuration. Waiting does not fix it, but the collector must not lose
  data: logged as an error and raised as StoreUnavailable, so the batch is spooled.
Foreign exceptions are translated once, in `translate` (as httpx's own
`map_httpcore_exceptions`): no httpx exception leaves `stores/`.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from ingest.stores.base import StoreConfigError, StoreError, StoreRejected, StoreUnavailable
from ingest.stores.influx import influxql

log = logging.getLogger(__name__)
T = TypeVar("T")

_REFUSED = ("partial write", "unable to parse", "field type conflict",
            "points beyond retention policy")
_RETRY_STATUS = frozenset({408, 429})
_QUERY_REQUESTS = 4  # at most this many concurrent requests for one multi-statement query


class Kind(Enum):
    WRITTEN = auto()
    RETRY = auto()
    REFUSED = auto()
    NO_DATABASE = auto()
    TOO_LARGE = auto()
    MISCONFIGURED = auto()


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Kind
    detail: str = ""
    retry_after_s: float | None = None


def classify_write(status: int, error: str, retry_after: str | None = None) -> Verdict:
    """What a `/write` response means for the batch (see the module docstring)."""
    if status in (200, 204):
        return Verdict(Kind.WRITTEN)
    if "database not found" in error:
        return Verdict(Kind.NO_DATABASE, error)
    if status == 413:
        return Verdict(Kind.TOO_LARGE, f"InfluxDB refused the request body as too large (413: "
                       f"{error or 'no detail'}); see max-body-size in its [http] section")
    if status == 400 and any(marker in error for marker in _REFUSED):
        return Verdict(Kind.REFUSED, error)
    if status >= 500 and "hinted handoff queue not empty" in error:
        return Verdict(Kind.WRITTEN, error)
    if status >= 500 or status in _RETRY_STATUS:
        return Verdict(Kind.RETRY, f"InfluxDB answered {status}: {error or 'no detail'}",
                       retry_after_s(retry_after))
    if status in (401, 403):
        return Verdict(Kind.MISCONFIGURED, f"InfluxDB refused the credentials ({status}: "
                       f"{error}); check the user, password and privileges in the store URL")
    return Verdict(Kind.MISCONFIGURED, f"InfluxDB answered {status}: {error or 'no detail'}; "
                   "check the store URL")


def retry_after_s(header: str | None, now_s: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (relative to `now_s`, epoch s)."""
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
    return max(0.0, when.timestamp() - (time.time() if now_s is None else now_s))


def retry_delay_s(attempt: int, remaining_s: float, *, base_s: float, cap_s: float,
                  retry_after: float | None = None, jitter: float = 0.5) -> float | None:
    """How long to wait before retry number `attempt` (0 for the first), or None to give up
    because the wait would end past the deadline (`remaining_s` from now).

    Without Retry-After the n-th delay lies in [base * 2**n, base * 2**(n+1)], capped: once
    capped the range is [cap/2, cap], still jittered so that collectors that lost the server
    together do not come back in step. Retry-After takes precedence, plus up to `base_s`.
    `jitter` in [0, 1) picks the point in the range (random in use, fixed in tests)."""
    if retry_after is not None:
        delay = retry_after + jitter * base_s
    else:
        low = min(base_s * 2.0 ** min(attempt, 64), cap_s / 2)
        delay = low + jitter * (min(2 * low, cap_s) - low)
    return None if delay >= remaining_s else delay


class Transient(Exception):
    """A request that may succeed if sent again (no answer, or a retryable answer)."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def translate(exc: Exception, where: str, timeout_s: float) -> Transient | StoreError:
    """The one mapping of httpx's exceptions: transport trouble may pass (Transient, retried
    and then StoreUnavailable); the rest is a request we built wrong (StoreRejected)."""
    if isinstance(exc, httpx.TimeoutException):
        return Transient(f"InfluxDB at {where} did not answer within {timeout_s:g}s")
    if isinstance(exc, httpx.HTTPError):
        return Transient(f"cannot reach InfluxDB at {where}: {type(exc).__name__}: {exc}")
    return StoreRejected(f"bad request to InfluxDB at {where}: {type(exc).__name__}: {exc}")


# Every exception httpx raises: its HTTPError tree, and what stands outside it.
HTTPX_ERRORS = (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError)


class Budget:
    """How long one logical request may keep failing, and how often it has."""

    def __init__(self, seconds: float, base_s: float, cap_s: float) -> None:
        self.seconds, self.base_s, self.cap_s = seconds, base_s, cap_s
        self.end = time.monotonic() + seconds
        self.attempt = 0

    def remaining(self) -> float:
        return self.end - time.monotonic()

    async def wait(self, why: Transient) -> None:
        delay = retry_delay_s(self.attempt, self.remaining(), base_s=self.base_s,
                              cap_s=self.cap_s, retry_after=why.retry_after,
                              jitter=random.random())
        if delay is None:
            raise StoreUnavailable(f"{why} (gave up after {self.seconds:g}s)") from None
        log.info("influxdb retry attempt=%d delay_s=%.3f reason=%s", self.attempt + 1, delay, why)
        self.attempt += 1
        await asyncio.sleep(delay)


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str
    database: str
    auth: httpx.BasicAuth | None
    where: str  # host:port/db for messages: never the credentials


def parse_url(url: str) -> Target:
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
    return Target(f"{scheme}://{netloc}", database, auth, f"{netloc}/{database}")


class InfluxHttp:
    """One httpx client to one database, with the retries and the error translation."""

    def __init__(self, url: str, *, deadline_s: float = 5.0, request_timeout_s: float = 10.0,
                 backoff_s: float = 0.05, max_backoff_s: float = 1.0) -> None:
        self.target = parse_url(url)
        self.url_scheme = urlsplit(url).scheme
        self.database = self.target.database
        self._deadline_s, self._request_timeout_s = deadline_s, request_timeout_s
        self._backoff_s, self._max_backoff_s = backoff_s, max_backoff_s
        self._client: httpx.AsyncClient | None = None

    async def open(self, ensure_database: bool = True) -> None:
        self._client = httpx.AsyncClient(base_url=self.target.base_url, auth=self.target.auth)
        if not ensure_database:
            return
        try:
            # One attempt only: the collector must start (and spool) while InfluxDB is down;
            # the first write creates the database if this did not.
            await self.ensure_database(deadline_s=0.0)
        except StoreUnavailable as exc:
            log.warning("influxdb database not ensured at start where=%s error=%s",
                        self.target.where, exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def budget(self, deadline_s: float | None = None) -> Budget:
        seconds = self._deadline_s if deadline_s is None else deadline_s
        return Budget(seconds, self._backoff_s, self._max_backoff_s)

    async def ensure_database(self, deadline_s: float | None = None) -> None:
        """CREATE DATABASE (a no-op when it exists); StoreUnavailable when that fails."""
        await self.retrying(self.create_database, self.budget(deadline_s))

    async def ping(self) -> None:
        try:
            resp = await self.send("GET", "/ping", self.budget())  # one attempt
        except Transient as exc:
            raise StoreUnavailable(str(exc)) from None
        if resp.status_code != 204:
            raise StoreUnavailable(f"InfluxDB ping at {self.target.where} answered "
                                   f"{resp.status_code}")

    async def send(self, method: str, path: str, budget: Budget, **kwargs: Any
                   ) -> httpx.Response:
        """One HTTP request; every httpx exception becomes Transient or a StoreError."""
        if self._client is None:
            raise StoreRejected("the InfluxDB store was used outside `async with`")
        timeout = min(self._request_timeout_s, max(budget.remaining(), 0.5))
        try:
            return await self._client.request(method, path, timeout=timeout, **kwargs)
        except HTTPX_ERRORS as exc:
            raise translate(exc, self.target.where, timeout) from None

    async def retrying(self, call: Callable[[Budget], Awaitable[T]], budget: Budget) -> T:
        while True:
            try:
                return await call(budget)
            except Transient as exc:
                await budget.wait(exc)

    async def create_database(self, budget: Budget) -> None:
        resp = await self.send("POST", "/query", budget, data={
            "q": f"CREATE DATABASE {influxql.quote_ident(self.database)}"})
        self.check_query(resp)
        error = influxql.first_error(resp.content)
        if error:
            raise StoreUnavailable(f"cannot create InfluxDB database {self.database!r}: "
                                   f"{error}")

    def check_query(self, resp: httpx.Response) -> None:
        status = resp.status_code
        if status == 200:  # errors inside a 200 are per statement (`statement_results`)
            return
        error = error_text(resp)  # parses the body: only for an error status
        if status >= 500 or status in _RETRY_STATUS:
            raise Transient(f"InfluxDB answered {status}: {error}",
                            retry_after_s(resp.headers.get("Retry-After")))
        if status in (401, 403):
            detail = classify_write(status, error).detail
            log.error("influxdb access refused where=%s detail=%s", self.target.where, detail)
            raise StoreUnavailable(detail)
        raise StoreRejected(f"InfluxDB refused a query ({status}): {error}")

    async def results(self, statements: Sequence[str], database: str | None = None
                      ) -> list[list[influxql.Series]]:
        """The series of each statement (in `database`, default the URL's). InfluxDB runs
        the statements of one request one after the other, so many go as a few concurrent
        requests (`;`-separated)."""
        size = max(8, -(-len(statements) // _QUERY_REQUESTS))
        chunks = [statements[i:i + size] for i in range(0, len(statements), size)]
        answers = await asyncio.gather(*(self._statements(c, database or self.database)
                                         for c in chunks))
        return [series for answer in answers for series in answer]

    async def _statements(self, statements: Sequence[str], database: str
                          ) -> list[list[influxql.Series]]:
        async def once(budget: Budget) -> httpx.Response:
            resp = await self.send("POST", "/query", budget, data={
                "q": ";\n".join(statements), "db": database, "epoch": "ns"})
            self.check_query(resp)
            return resp

        resp = await self.retrying(once, self.budget())
        return influxql.statement_results(resp.content, len(statements))


class OverHttp:
    """What the writer and the reader share: an `InfluxHttp` of their own, opened on
    entering (which also creates the database if it can, in one attempt, unless
    `ensure_database` is false: a read-only check creates nothing)."""

    def __init__(self, url: str, *, deadline_s: float = 5.0, request_timeout_s: float = 10.0,
                 backoff_s: float = 0.05, max_backoff_s: float = 1.0,
                 ensure_database: bool = True) -> None:
        self._http = InfluxHttp(url, deadline_s=deadline_s, request_timeout_s=request_timeout_s,
                                backoff_s=backoff_s, max_backoff_s=max_backoff_s)
        self._ensure_database = ensure_database
        self.url_scheme = self._http.url_scheme
        self.database = self._http.database

    async def __aenter__(self) -> Self:
        await self._http.open(self._ensure_database)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._http.close()

    async def ping(self) -> None:
        await self._http.ping()


def error_text(resp: httpx.Response) -> str:
    """InfluxDB's error message: the JSON `error`, else its header, else the body's start (of
    an HTML page, what a proxy in front of InfluxDB answers: its title, or its text)."""
    try:
        error = resp.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, str):
        return error
    if header := resp.headers.get("X-Influxdb-Error"):
        return str(header)
    text = resp.text[:4096]
    if resp.headers.get("Content-Type", "").startswith("text/html"):
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        text = title.group(1) if title else re.sub(r"<[^>]*>", " ", text)
        text = f"an HTML page, not InfluxDB's answer (a proxy in front of it?): {text}"
    return " ".join(text.split())[:500]


_DROPPED = re.compile(r"\s*dropped=(\d+)\s*$")


def dropped_points(error: str) -> tuple[str, int]:
    """A partial write's message without its ` dropped=N` suffix, and N (0 if absent). With
    points in several shards InfluxDB reports one shard's count: N is a lower bound."""
    found = _DROPPED.search(error)
    return (error[:found.start()], int(found.group(1))) if found else (error, 0)
