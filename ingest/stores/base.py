"""The store contract: what the collector writes to and what the API reads from.

Two implementations (SQLite, InfluxDB) behind one protocol, chosen by URL scheme in
`ingest.stores.open_store`. Exactly two error kinds leave a store: `StoreUnavailable`
(retryable: the caller spools and retries) and points the store refuses for good, returned by
`write` so the caller dead-letters them. No httpx or sqlite3 exception escapes `stores/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

from ingest.model import Point, tag_of


class StoreError(Exception):
    """Base of the store's own errors."""


class StoreUnavailable(StoreError):
    """The store cannot take the write now (down, slow, overloaded): retry later."""


class StoreConfigError(StoreError):
    """The store URL or options are wrong: a user must fix the configuration."""


@dataclass(frozen=True, slots=True)
class RejectedPoint:
    point: Point
    detail: str


class Agg(StrEnum):
    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"


@dataclass(frozen=True, slots=True)
class SeriesQuery:
    """One field of one measurement, aggregated into `every_s` buckets over [start, end).

    Times are integer nanoseconds; buckets are aligned to the epoch (as InfluxQL's GROUP BY
    time does) and buckets without data are left out. Tag filters are exact matches.
    """

    measurement: str
    field: str
    start: int
    end: int
    agg: Agg = Agg.MEAN
    every_s: float = 60.0
    pilot: str | None = None
    gateway: str | None = None
    device: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    ts: int
    reason: str
    topic: str
    payload: str
    detail: str


# ---------------------------------------------------------------------------------------------
# Aggregation queries for the KPIs and the API (issue 4). The KPI service asks the store for
# aggregates over explicit time windows that it computes itself in the pilot's timezone: the
# stores know no calendar (InfluxQL has no month and aligns `1w` to a Thursday; SQLite has no
# timezone database), so a window is just [start ns, end ns). Windows may overlap.

Window = tuple[int, int]
TagFilter = tuple[tuple[str, tuple[str, ...]], ...]  # (tag key, accepted values): key IN values


class Stat(StrEnum):
    """A statistic over the numbers (or, for COUNT and COUNT_DISTINCT, any values) of a field."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"
    COUNT_DISTINCT = "count_distinct"
    P95 = "p95"  # nearest rank, InfluxDB's rule: the floor(n * 0.95 + 0.5)-th smallest value
    MEAN_EXP10 = "mean_exp10"  # mean of 10**(x/10): the energy average of decibel levels


ROLLUP_STATS = frozenset({Stat.MEAN, Stat.MIN, Stat.MAX, Stat.SUM, Stat.COUNT})


@dataclass(frozen=True, slots=True)
class Rollup:
    """An inner aggregation: `stat` per `every_s` sub-interval, aligned to each window's start
    (empty sub-intervals are left out); the query's own stat then runs over these values."""

    stat: Stat
    every_s: float


@dataclass(frozen=True, slots=True)
class Aggregate:
    """`stat` of `field` over each window, per measurement and per combination of `by` tags.

    `where` keeps points whose tag is one of the given values. `inner` rolls the points up per
    sub-interval first (e.g. hourly means), and `above` then keeps only rolled-up values
    greater than it (e.g. hours with a mean NO2 above 200). `prefix` keeps points whose string
    field starts with it (dead letters of one pilot's topics). Rows without data are absent.
    """

    measurements: tuple[str, ...]
    field: str
    stat: Stat
    windows: tuple[Window, ...]
    by: tuple[str, ...] = ()
    where: TagFilter = ()
    inner: Rollup | None = None
    above: float | None = None
    prefix: str | None = None

    def __post_init__(self) -> None:
        if not self.measurements or not self.windows:
            raise ValueError("an aggregate needs at least one measurement and one window")
        if any(hi <= lo for lo, hi in self.windows):
            raise ValueError("every window must end after it starts")
        if self.inner is not None and (self.inner.stat not in ROLLUP_STATS
                                       or self.stat not in ROLLUP_STATS
                                       or round(self.inner.every_s * 1e9) < 1):
            raise ValueError("a rollup takes mean/min/max/sum/count at a positive interval")
        if self.above is not None and self.inner is None:
            raise ValueError("`above` filters rolled-up values: give `inner` too")
        if self.prefix is not None and self.stat is not Stat.COUNT:
            raise ValueError("`prefix` filters a string field: only COUNT applies")


@dataclass(frozen=True, slots=True)
class AggRow:
    window: int  # index into Aggregate.windows
    measurement: str
    tags: tuple[tuple[str, str], ...]  # the `by` tags, in order ('' where a point lacks one)
    value: float

    def tag(self, key: str) -> str:
        return tag_of(self.tags, key)


@dataclass(frozen=True, slots=True)
class Distinct:
    """The distinct values of a field in each window (e.g. the pseudonymous users of a week:
    the returning-user rate needs set operations, which neither query language offers)."""

    measurement: str
    field: str
    windows: tuple[Window, ...]
    where: TagFilter = ()


@dataclass(frozen=True, slots=True)
class Seen:
    """When a device last sent a point of a measurement."""

    measurement: str
    pilot: str
    gateway: str
    device: str
    ts: int


class Store(Protocol):
    """An async context manager; enter it before any other call."""

    url_scheme: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""

    async def write(self, points: Sequence[Point]) -> list[RejectedPoint]:
        """Store points idempotently: the same (measurement, tags, ts) is one point, the
        fields of a rewrite merge into it. Returns the points refused for good (everything
        else is stored); raises StoreUnavailable when nothing could be stored for now."""

    async def series(self, query: SeriesQuery) -> list[tuple[int, float]]:
        """(bucket start ns, aggregate) pairs, oldest first."""

    async def latest(self, measurement: str, *, pilot: str | None = None,
                     gateway: str | None = None, device: str | None = None) -> list[Point]:
        """The newest point of each (pilot, gateway, device) series, all its fields."""

    async def count(self, measurement: str, field: str, *, start: int | None = None,
                    end: int | None = None, pilot: str | None = None,
                    gateway: str | None = None, device: str | None = None) -> int:
        """How many points of the measurement carry the field in [start, end)."""

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        """Kept dead letters, newest first."""

    # The read side of the API and the KPIs (issue 4).

    async def measurements(self) -> list[str]:
        """Every measurement in the store, sorted."""

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        """The rows of `query`, ordered by window, measurement and tags."""

    async def distinct(self, query: Distinct) -> list[set[str]]:
        """One set of values per window."""

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = ()) -> list[Seen]:
        """The newest point carrying `field` of each (measurement, pilot, gateway, device)
        in [start, end), ordered by pilot, gateway, device, measurement."""
