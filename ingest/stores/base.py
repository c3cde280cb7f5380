"""The store contracts: `Store`, what the collector writes to, and `Reader`, what the API,
the KPIs and the dashboards read through.

Two implementations of each (SQLite, InfluxDB), chosen by URL scheme in `ingest.stores`.
Reads are one query model: an `Aggregate` (a statistic of a field over explicit windows,
optionally in epoch-aligned buckets, per tag combination), plus the distinct values of a field,
the counts of a field's values in fixed log buckets (`Histogram`), a field's raw values one
point at a time (`Values`),
when devices were first and last seen, the newest point per device and the kept dead letters;
every filter is a `TagFilter`. Exactly two error kinds leave `stores/`: `StoreUnavailable`
(retryable) and `StoreRejected` (refused for good; `StoreConfigError`, a bad URL or option, is
one). Points a write refuses one by one are returned by `write`, for the caller to
dead-letter. No httpx or sqlite3 exception escapes `stores/`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Protocol, Self

from ingest.model import TAG_KEYS, Point, payload_bytes, tag_of
from ingest.stores.histogram import ACCURACY


class StoreError(Exception):
    """The common base of the two kinds below; never raised itself."""


class StoreUnavailable(StoreError):
    """The store cannot answer now (down, slow, overloaded, locked): retry later; the
    collector spools the batch."""


class StoreRejected(StoreError):
    """The store refused the request for good (waiting will not help): the collector
    dead-letters the points; the API answers 500."""


class StoreConfigError(StoreRejected):
    """The store URL or options are wrong: a user must fix the configuration. Its message is
    one line naming the fix (the CLI prints it as it is)."""


@dataclass(frozen=True, slots=True)
class RejectedPoint:
    point: Point
    detail: str


@dataclass(frozen=True, slots=True)
class DeadLetter:
    ts: int
    reason: str
    topic: str
    payload: str  # the text, or base64 when `payload_encoding` is "base64"
    detail: str
    payload_encoding: str = "utf-8"

    def raw(self) -> bytes:
        """The payload as it arrived (up to the size cap)."""
        return payload_bytes(self.payload, self.payload_encoding)


# The stores know no calendar: the KPI service computes its windows in the pilot's timezone
# (InfluxQL has no month and aligns `1w` to a Thursday; SQLite has no timezone database), so a
# window is just [start ns, end ns). Windows may overlap.

Window = tuple[int, int]
TagFilter = tuple[tuple[str, tuple[str, ...]], ...]  # (tag key, accepted values): key IN values
# Every time InfluxDB can hold (its MinNanoTime and MaxNanoTime): "no time bound".
ALL_TIME: Window = (-(2**63) + 2, 2**63 - 2)


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


def check_tags(where: TagFilter, by: Sequence[str] = ()) -> None:
    """Only citypilot's own tag keys reach a query (they become identifiers or columns)."""
    for key in [k for k, _ in where] + list(by):
        if key not in TAG_KEYS:
            raise ValueError(f"{key!r} is not a tag citypilot writes")


@dataclass(frozen=True, slots=True)
class Aggregate:
    """`stat` of `field` over each window, per measurement and per combination of `by` tags.

    `where` keeps points whose tag is one of the given values. `every_s` splits each window
    into buckets of that width aligned to the epoch (as InfluxQL's GROUP BY time; a reading
    series), each row carrying its bucket's start. `inner` rolls the points up per
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
    every_s: float | None = None

    def __post_init__(self) -> None:
        check_tags(self.where, self.by)
        if not self.measurements or not self.windows:
            raise ValueError("an aggregate needs at least one measurement and one window")
        if any(hi <= lo for lo, hi in self.windows):
            raise ValueError("every window must end after it starts")
        if self.inner is not None and (self.inner.stat not in ROLLUP_STATS
                                       or self.stat not in ROLLUP_STATS
                                       or round(self.inner.every_s * 1e9) < 1):
            raise ValueError("a rollup takes mean/min/max/sum/count at a positive interval")
        if self.every_s is not None and (self.inner is not None or self.prefix is not None
                                         or self.stat not in ROLLUP_STATS
                                         or round(self.every_s * 1e9) < 1):
            raise ValueError("buckets take mean/min/max/sum/count at a positive width, "
                             "without a rollup or a prefix")
        if self.above is not None and (self.inner is None or not math.isfinite(self.above)):
            raise ValueError("`above` filters rolled-up values: give `inner` and a finite "
                             "threshold")
        if self.prefix is not None and self.stat is not Stat.COUNT:
            raise ValueError("`prefix` filters a string field: only COUNT applies")

    @property
    def every_ns(self) -> int | None:
        return None if self.every_s is None else round(self.every_s * 1e9)


@dataclass(frozen=True, slots=True)
class AggRow:
    window: int  # index into Aggregate.windows
    measurement: str
    tags: tuple[tuple[str, str], ...]  # the `by` tags, in order ('' where a point lacks one)
    value: float
    start: int  # the bucket's start with `every_s`, else the window's

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

    def __post_init__(self) -> None:
        check_tags(self.where)


@dataclass(frozen=True, slots=True)
class Histogram:
    """How many values of `field` fall in each fixed log bucket (`histogram.bucket` at
    `accuracy`) in each window, per measurement: a percentile with a bounded relative error
    is read off these counts, and counts add up over hours (the rollups keep them)."""

    measurements: tuple[str, ...]
    field: str
    windows: tuple[Window, ...]
    where: TagFilter = ()
    accuracy: float = ACCURACY

    def __post_init__(self) -> None:
        check_tags(self.where)
        if not self.measurements or not self.windows:
            raise ValueError("a histogram needs at least one measurement and one window")


@dataclass(frozen=True, slots=True)
class HistRow:
    window: int  # index into Histogram.windows
    measurement: str
    bucket: int
    count: int


@dataclass(frozen=True, slots=True)
class Values:
    """The raw numeric values of `field`, one row per point in [window), newest first (oldest
    first with `oldest_first`), `limit` rows after skipping `offset`: a device's series as the
    SensorThings Observations page through it. Points where the field is absent or not a
    number are not rows."""

    measurement: str
    field: str
    window: Window
    where: TagFilter = ()
    oldest_first: bool = False
    limit: int = 1000
    offset: int = 0

    def __post_init__(self) -> None:
        check_tags(self.where)
        if self.window[1] <= self.window[0]:
            raise ValueError("the window must end after it starts")
        if self.limit < 1 or self.offset < 0:
            raise ValueError("limit must be positive and offset not negative")


@dataclass(frozen=True, slots=True)
class ValueRow:
    ts: int
    value: float
    pilot: str
    gateway: str
    device: str


@dataclass(frozen=True, slots=True)
class Dirty:
    """A (pilot, hour) slot that a write touched, and when: what derived data (the rollups)
    must recompute. Every writer marks the slots of the points it stores, before storing them
    (a mark without data costs a recompute; data without a mark would be missed)."""

    pilot: str
    hour: int  # ns, the start of a UTC hour
    marked_at: int  # ns, the writer's clock


SLOT_NS = 3600 * 10**9  # a dirty slot is one UTC hour
DIRTY_MEASUREMENT = "dirty"  # where the InfluxDB writer keeps its marks (rollup database)


def dirty_slots(points: Sequence[Point]) -> set[tuple[str, int]]:
    """The (pilot, hour) slots of points that carry a pilot (dead letters do not)."""
    return {(pilot, p.ts // SLOT_NS * SLOT_NS) for p in points
            if (pilot := tag_of(p.tags, "pilot"))}


@dataclass(frozen=True, slots=True)
class Seen:
    """When a device last (or first) sent a point of a measurement (with the `by` tags it
    was asked per, e.g. the service of events)."""

    measurement: str
    pilot: str
    gateway: str
    device: str
    ts: int
    tags: tuple[tuple[str, str], ...] = ()  # the `by` tags, in order ('' where absent)

    def order(self) -> tuple[str, str, str, str, tuple[tuple[str, str], ...]]:
        """The order `last_seen` and `first_seen` answer in."""
        return self.pilot, self.gateway, self.device, self.measurement, self.tags

    def tag(self, key: str) -> str:
        return tag_of(self.tags, key)


class _Component(Protocol):
    """An async context manager; enter it before any other call."""

    url_scheme: str

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None: ...

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""


class Store(_Component, Protocol):
    """The collector's side: points (dead letters are points too) in."""

    async def write(self, points: Sequence[Point]) -> list[RejectedPoint]:
        """Store points idempotently: the same (measurement, tags, ts) is one point, the
        fields of a rewrite merge into it. Returns the points refused for good (everything
        else is stored); raises StoreUnavailable when nothing could be stored for now, and
        StoreRejected when the store refuses the whole batch."""


class Reader(_Component, Protocol):
    """Everyone else's side: the API, the KPIs, the dashboards' checks and the CLI."""

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        """The rows of `query`, ordered by window, measurement, tags and bucket."""

    async def distinct(self, query: Distinct) -> list[set[str]]:
        """One set of values per window."""

    async def histogram(self, query: Histogram) -> list[HistRow]:
        """The non-empty buckets of `query`, ordered by window, measurement and bucket."""

    async def values(self, query: Values) -> list[ValueRow]:
        """The rows of `query`, in time order (ties: by pilot, gateway, device)."""

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        """The newest point carrying `field` of each (measurement, pilot, gateway, device,
        and `by` tags) in [start, end), ordered by pilot, gateway, device, measurement."""

    async def first_seen(self, measurements: Sequence[str], field: str, *,
                         start: int | None = None, end: int | None = None,
                         where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        """The oldest such point (when each device first reported), in the same shape."""

    async def latest(self, measurement: str, *, where: TagFilter = ()) -> list[Point]:
        """The newest point of each (pilot, gateway, device) series, all its fields."""

    async def measurements(self) -> list[str]:
        """Every measurement in the store, sorted."""

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        """Kept dead letters, newest first."""

    async def fields(self) -> dict[str, list[str]]:
        """The numeric fields of each measurement, sorted."""

    async def dirty(self, since: int | None = None) -> list[Dirty]:
        """The slots marked after `since` (ns; None: all), oldest mark first."""
