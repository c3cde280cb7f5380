"""Periods in a pilot's timezone: the buckets of a KPI request and the windows inside them.

The stores know no calendar (InfluxQL aligns `GROUP BY time()` to the epoch, `1w` to a
Thursday, and has no month; SQLite has no timezone database), so every bucket boundary is
computed here, with zoneinfo, and handed to the store as integer nanoseconds. A local day is
23 or 25 hours long across a DST change; a week starts on Monday (ISO 8601); buckets are
clipped to the requested [start, end); the grain `period` is the whole of it, one bucket.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from api.texts import N_

NS = 10**9
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Grain(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    PERIOD = "period"  # the whole [start, end) as one bucket: a report's headline figure


def to_ns(moment: datetime) -> int:
    """An aware datetime as integer nanoseconds (exact, unlike `timestamp()`)."""
    return (moment - _EPOCH) // timedelta(microseconds=1) * 1000


def from_ns(ns: int, tz: ZoneInfo | None = None) -> datetime:
    moment = _EPOCH + timedelta(microseconds=ns // 1000)
    return moment.astimezone(tz) if tz is not None else moment


def rfc3339(ns: int, tz: ZoneInfo) -> str:
    """Local time with its offset, seconds precision unless there is a fraction."""
    text = from_ns(ns, tz).isoformat()
    return text.replace("+00:00", "Z") if tz.key == "UTC" else text


def midnight(day: date, tz: ZoneInfo) -> int:
    return to_ns(datetime.combine(day, time(0), tzinfo=tz))


def local_at(day: date, hour: int, tz: ZoneInfo) -> int:
    return to_ns(datetime.combine(day, time(hour), tzinfo=tz))


# Lden's parts (Directive 2002/49/EC, Annex I), local times: (name, start hour, end hour (the
# next day when smaller), penalty dB, hours).
LDEN_PARTS = ((N_("day"), 7, 19, 0.0, 12), (N_("evening"), 19, 23, 5.0, 4),
              (N_("night"), 23, 7, 10.0, 8))
# Where the day rollups cut a local day for their part sums: midnight and Lden's edges.
SEGMENT_HOURS = tuple(sorted({0, *(start for _, start, _, _, _ in LDEN_PARTS)}))


def segments(day: date, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """A local day cut at `SEGMENT_HOURS`: (start hour, lo, hi) per segment."""
    edges = [local_at(day, hour, tz) for hour in SEGMENT_HOURS]
    edges.append(midnight(day + timedelta(days=1), tz))
    pairs = itertools.pairwise(edges)
    return [(hour, lo, hi) for hour, (lo, hi) in zip(SEGMENT_HOURS, pairs, strict=True)]


def _next_boundary(day: date, grain: Grain) -> date:
    """The first day of the next bucket after the one holding `day`."""
    if grain is Grain.DAY:
        return day + timedelta(days=1)
    if grain is Grain.WEEK:
        return day + timedelta(days=7 - day.weekday())
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True, slots=True)
class Bucket:
    index: int
    lo: int  # ns, inclusive
    hi: int  # ns, exclusive

    @property
    def window(self) -> tuple[int, int]:
        return self.lo, self.hi


def buckets(start_ns: int, end_ns: int, grain: Grain, tz: ZoneInfo) -> list[Bucket]:
    """[start, end) cut at the grain's local boundaries."""
    if grain is Grain.PERIOD:
        return [Bucket(0, start_ns, end_ns)]
    edges = [start_ns]
    day = from_ns(start_ns, tz).date()
    while True:
        day = _next_boundary(day, grain)
        edge = midnight(day, tz)
        if edge >= end_ns:
            break
        if edge > edges[-1]:
            edges.append(edge)
    edges.append(end_ns)
    return [Bucket(i, lo, hi) for i, (lo, hi) in enumerate(itertools.pairwise(edges))]


def days(bucket: Bucket, tz: ZoneInfo) -> list[tuple[date, int, int]]:
    """The local days of a bucket, each clipped to it: (date, lo, hi)."""
    out: list[tuple[date, int, int]] = []
    for b in buckets(bucket.lo, bucket.hi, Grain.DAY, tz):
        out.append((from_ns(b.lo, tz).date(), b.lo, b.hi))
    return out


def days_before(ns: int, count: int, tz: ZoneInfo) -> int:
    """The same local wall time `count` days earlier (so a week is 7 local days)."""
    local = from_ns(ns, tz)
    earlier = datetime.combine(local.date() - timedelta(days=count), local.timetz().replace(
        tzinfo=None), tzinfo=tz)
    return to_ns(earlier) + ns % 1000


def count_days(lo: int, hi: int) -> float:
    return (hi - lo) / (86400 * NS)


def pieces(windows: list[tuple[int, int]]) -> tuple[list[tuple[int, int]], list[list[int]]]:
    """Overlapping windows cut at every boundary: the pieces (each inside some window), and
    for each window the indexes of the pieces that make it up. Rolling windows (a week
    ending on each day) then read every point once: counts add up over pieces, distinct
    users are the union of the pieces' sets."""
    edges = sorted({edge for window in windows for edge in window})
    position = {edge: i for i, edge in enumerate(edges)}
    used = sorted({i for lo, hi in windows for i in range(position[lo], position[hi])})
    renumber = {i: n for n, i in enumerate(used)}
    parts = [(edges[i], edges[i + 1]) for i in used]
    members = [[renumber[i] for i in range(position[lo], position[hi])] for lo, hi in windows]
    return parts, members
