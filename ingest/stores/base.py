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

from ingest.model import Point


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
