"""How one raw aggregate is answered from hour and day rollups, exactly, or not at all.

A rollup point holds, per raw series and UTC hour, `<field>__count`, `__sum`, `__min`, `__max`,
`__mean` (and `__e10`, the sum of 10^(x/10), for levels in dB). Day rollup points hold the same
parts per local day of the pilot (and `__day_hmax`, the highest hourly mean, `__day_hours`, the
hours with data, `__day_msum`, the sum of their means), and for levels in dB the count and
energy sum of each segment of the day (`__day_e10_h07`: from 07:00 local to the next of
`periods.SEGMENT_HOURS`; Lden's parts are such segments). A raw `Aggregate` is cut at a split
point: the hours before it are read from the rollups — its whole local days from day points
when the pilot's zone is known, the hours around them from hour points, or from segment sums
where a piece is made of whole segments — the rest (at most the hours the worker has not
finished) from raw points, and the answers are merged. Merging needs statistics that add up, so
every statistic is asked for as its *parts* — COUNT, SUM, MIN, MAX (and the energy sum) — and
finished here: a mean is a sum over a count on every side.

What cannot be answered exactly is not planned (`plan` returns None) and reads raw: a
percentile, dead letters by topic prefix, a window that does not start on a whole hour, an
inner interval that is not a whole number of hours, and an inner hourly mean over groups
that may hold several series (a mean of means is not the mean), and buckets (`every_s`:
readings series, bounded by the API's point limit).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from api.kpis.periods import from_ns, midnight, segments
from ingest.model import EVENT_MEASUREMENT
from ingest.stores.base import Aggregate, AggRow, Rollup, Stat, Window
from ingest.units import lookup

HOUR_NS = 3600 * 10**9
DAY = "day_"  # a day rollup part's prefix: `no2__day_count` (`summary.day_points`)


class Part(StrEnum):
    """A statistic that merges over disjoint time ranges."""

    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    E10 = "e10"  # the sum of 10^(x/10)


# Which parts finish each statistic.
PARTS: dict[Stat, tuple[Part, ...]] = {
    Stat.COUNT: (Part.COUNT,), Stat.SUM: (Part.SUM,), Stat.MIN: (Part.MIN,),
    Stat.MAX: (Part.MAX,), Stat.MEAN: (Part.SUM, Part.COUNT),
    Stat.MEAN_EXP10: (Part.E10, Part.COUNT)}
# A part over raw points, and over rollup points without an inner rollup: (stat, field part).
_RAW = {Part.COUNT: Stat.COUNT, Part.SUM: Stat.SUM, Part.MIN: Stat.MIN, Part.MAX: Stat.MAX}
_ROLLED = {Part.COUNT: (Stat.SUM, "count"), Part.SUM: (Stat.SUM, "sum"),
           Part.MIN: (Stat.MIN, "min"), Part.MAX: (Stat.MAX, "max"),
           Part.E10: (Stat.SUM, "e10")}
# An inner rollup's statistic over rollup points.
_INNER = {Stat.COUNT: (Stat.SUM, "count"), Stat.SUM: (Stat.SUM, "sum"),
          Stat.MIN: (Stat.MIN, "min"), Stat.MAX: (Stat.MAX, "max")}
RowKey = tuple[int, str, tuple[tuple[str, str], ...]]  # (window, measurement, by tags)


def rollup_field(field: str, part: str) -> str:
    return f"{field}__{part}"


def segment_field(field: str, part: str, hour: int) -> str:
    """A day point's part of one segment of the day: `noise_laeq__day_e10_h07`."""
    return rollup_field(field, f"{DAY}{part}_h{hour:02d}")


def is_level(field: str) -> bool:
    """A level in decibels, whose energy sums the rollups keep (Lden needs them exactly)."""
    metric = lookup(field)
    return metric is not None and metric.unit.startswith("dB(")


@dataclass(frozen=True, slots=True)
class Side:
    """The queries of one side and, per query window, the original window. `raw`: read from
    raw points (energy comes as a mean there, see `_side_parts`), else from rollups."""

    queries: tuple[tuple[Part, Aggregate], ...]
    origin: tuple[int, ...]
    raw: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    query: Aggregate
    days: Side | None  # whole local days from day rollups (None: none)
    hours: Side | None  # the other hours before the split, from hour rollups
    raw: Side | None  # after the split
    segments: tuple[Side, ...] = ()  # whole segments of days, one side per start hour

    @property
    def sides(self) -> tuple[Side, ...]:
        return tuple(s for s in (self.days, self.hours, *self.segments, self.raw)
                     if s is not None)

    def finish(self, answers: Iterable[Iterable[list[AggRow]]]) -> list[AggRow]:
        """The rows of the original query from the answers of every side's queries."""
        parts: dict[RowKey, dict[Part, float]] = {}
        for side, answered in zip(self.sides, answers, strict=True):
            for key, have in _side_parts(side, answered).items():
                mine = parts.setdefault(key, {})
                for part, value in have.items():
                    mine[part] = _merge(part, mine.get(part), value)
        out: list[AggRow] = []
        for (window, measurement, tags), have in sorted(parts.items()):
            result = _finish(self.query, have)
            if result is not None:
                out.append(AggRow(window, measurement, tags, result,
                                  self.query.windows[window][0]))
        return out


def _side_parts(side: Side, answers: Iterable[list[AggRow]]) -> dict[RowKey, dict[Part, float]]:
    """Each row's parts on one side; raw energy comes as a mean and is weighed by the count
    here, so that every side holds energy sums."""
    parts: dict[RowKey, dict[Part, float]] = {}
    for (part, _), rows in zip(side.queries, answers, strict=True):
        for r in rows:
            have = parts.setdefault((side.origin[r.window], r.measurement, r.tags), {})
            have[part] = _merge(part, have.get(part), r.value)
    if side.raw:
        for have in parts.values():
            if Part.E10 in have:
                have[Part.E10] *= have.get(Part.COUNT, 0.0)
    return parts


def _merge(part: Part, old: float | None, new: float) -> float:
    if old is None:
        return new
    if part is Part.MIN:
        return min(old, new)
    if part is Part.MAX:
        return max(old, new)
    return old + new


def _finish(q: Aggregate, have: dict[Part, float]) -> float | None:
    if q.stat is Stat.MEAN:
        return have[Part.SUM] / have[Part.COUNT] if have.get(Part.COUNT) else None
    if q.stat is Stat.MEAN_EXP10:
        return have[Part.E10] / have[Part.COUNT] if have.get(Part.COUNT) else None
    return have.get(PARTS[q.stat][0])


def exact(q: Aggregate) -> bool:
    """Whether rollups can answer `q` (its windows aside)."""
    if q.prefix is not None or q.every_s is not None or q.stat not in PARTS:
        return False
    if q.inner is None:
        return True
    every = round(q.inner.every_s * 1e9)
    if every % HOUR_NS or q.stat is Stat.MEAN_EXP10:
        return False
    if q.inner.stat is Stat.MEAN:
        # One rollup point per group and hour: the hour's mean is the series' own.
        return every == HOUR_NS and {"gateway", "device"} <= set(q.by)
    return q.inner.stat in _INNER


def split_point(window: Window, horizon: int, q: Aggregate) -> int:
    """Where a window stops being read from rollups: at the horizon, at its own end, on a
    whole hour and a whole inner interval from its start; its start when it cannot be."""
    lo, hi = window
    if lo % HOUR_NS:
        return lo
    step = round(q.inner.every_s * 1e9) if q.inner is not None else HOUR_NS
    return lo + max(0, (min(hi, horizon) - lo) // step * step)


def whole_days(window: Window, tz: ZoneInfo) -> Window | None:
    """The local days wholly inside `window`, from the first local midnight in it to the
    last; None when there is none, or when a midnight is not a whole UTC hour (a zone
    offset by half an hour: a day would cut hour rollups)."""
    lo, hi = window
    first = midnight(from_ns(lo, tz).date(), tz)
    if first < lo:
        first = midnight(from_ns(lo, tz).date() + timedelta(days=1), tz)
    last = midnight(from_ns(hi, tz).date(), tz)
    if last <= first or first % HOUR_NS or last % HOUR_NS:
        return None
    return first, last


def by_days(window: Window, tz: ZoneInfo | None) -> tuple[Window | None, list[Window]]:
    """`window` (rolled up) cut into its whole local days in `tz` (None when there are none,
    or no zone) and the hours around them, which hour rollups answer."""
    lo, hi = window
    span = whole_days(window, tz) if tz is not None else None
    if span is None:
        return None, [window] if hi > lo else []
    return span, [w for w in ((lo, span[0]), (span[1], hi)) if w[1] > w[0]]


def whole_hour_segments(day: date, tz: ZoneInfo) -> list[tuple[int, int, int]] | None:
    """The segments of a local day (`periods.segments`) when every edge of them is a whole
    UTC hour, as hour rollups are; None otherwise (a zone offset by half an hour)."""
    cuts = segments(day, tz)
    whole = all(lo % HOUR_NS == 0 for _, lo, _ in cuts) and cuts[-1][2] % HOUR_NS == 0
    return cuts if whole else None


def in_segments(window: Window, tz: ZoneInfo) -> list[tuple[Window, int]] | None:
    """`window` as whole segments of local days: (the day, the segment's start hour) each;
    None when an end of it is not a segment edge, or the day's edges not whole UTC hours."""
    lo, hi = window
    out: list[tuple[Window, int]] = []
    while lo < hi:
        cuts = whole_hour_segments(from_ns(lo, tz).date(), tz)
        starts = {a: (hour, b) for hour, a, b in cuts or ()}
        if cuts is None or lo not in starts or starts[lo][1] > hi:
            return None
        hour, lo = starts[lo]
        out.append(((cuts[0][1], cuts[-1][2]), hour))
    return out


def _by_segment(q: Aggregate) -> bool:
    """Whether segment sums answer `q`: the count or energy mean of a level."""
    return q.inner is None and q.stat in (Stat.COUNT, Stat.MEAN_EXP10) and is_level(q.field)


def _by_day(q: Aggregate, layout: int) -> bool:
    """Whether day rollups answer `q`: plain parts, the highest hourly mean, and with
    layout 2 the mean of hourly means, and the hours with data of groups that are one series
    each (a device's readings: events are series per service and type, whose hours would add
    up)."""
    if q.inner is None:
        return True
    if q.inner.stat is Stat.MEAN:  # hourly (`exact`)
        return q.above is None and (q.stat is Stat.MAX or (layout >= 2 and q.stat is Stat.MEAN))
    return (layout >= 2 and q.inner.stat is Stat.COUNT and q.stat is Stat.COUNT
            and round(q.inner.every_s * 1e9) == HOUR_NS and q.above is None
            and {"gateway", "device"} <= set(q.by) and EVENT_MEASUREMENT not in q.measurements)


def plan(q: Aggregate, horizon: int, tz: ZoneInfo | None = None, layout: int = 1
         ) -> Plan | None:
    """The sides of `q`, or None when rollups cannot answer any of it exactly. With the
    pilot's zone `tz`, the whole local days before the horizon are read from day rollups, and
    when the day rollups are of `layout` 2 (`worker.LAYOUT`), whole segments of days too."""
    if not exact(q):
        return None
    days: list[tuple[int, Window]] = []
    hours: list[tuple[int, Window]] = []
    tail: list[tuple[int, Window]] = []
    by_segment: dict[int, list[tuple[int, Window]]] = {}
    segment_zone = tz if layout >= 2 and _by_segment(q) else None
    for i, (lo, hi) in enumerate(q.windows):
        cut = split_point((lo, hi), horizon, q)
        span, around = by_days((lo, cut), tz if _by_day(q, layout) else None)
        days += [(i, span)] if span is not None else []
        for w in around:
            pieces = in_segments(w, segment_zone) if segment_zone is not None else None
            if pieces is None:
                hours.append((i, w))
            for day, hour in pieces or ():
                by_segment.setdefault(hour, []).append((i, day))
        if hi > cut:
            tail.append((i, (cut, hi)))
    if not days and not hours and not by_segment:
        return None
    parts = PARTS[q.stat]  # over inner values too, the outer statistic splits the same way

    def side(got: list[tuple[int, Window]],
             make: Callable[[Aggregate, Part, tuple[Window, ...]], Aggregate],
             raw: bool = False) -> Side | None:
        return Side(tuple((p, make(q, p, tuple(w for _, w in got))) for p in parts),
                    tuple(i for i, _ in got), raw) if got else None
    return Plan(q, side(days, _day_query), side(hours, _rolled_query),
                side(tail, _raw_query, raw=True),
                tuple(s for hour, got in sorted(by_segment.items())
                      if (s := side(got, _segment_query(hour))) is not None))


def _segment_query(hour: int) -> Callable[[Aggregate, Part, tuple[Window, ...]], Aggregate]:
    def make(q: Aggregate, part: Part, windows: tuple[Window, ...]) -> Aggregate:
        stat, name = _ROLLED[part]
        return replace(q, field=segment_field(q.field, name, hour), stat=stat, windows=windows)
    return make


def _day_query(q: Aggregate, part: Part, windows: tuple[Window, ...]) -> Aggregate:
    if q.inner is not None:  # see `_by_day`
        if q.stat is Stat.MAX:  # the highest hourly mean
            name, stat = "hmax", Stat.MAX
        else:  # the hours with data, or the sum of the hourly means over them
            name, stat = "msum" if part is Part.SUM else "hours", Stat.SUM
        return replace(q, field=rollup_field(q.field, DAY + name), stat=stat, windows=windows,
                       inner=None)
    stat, name = _ROLLED[part]
    return replace(q, field=rollup_field(q.field, DAY + name), stat=stat, windows=windows)


def _rolled_query(q: Aggregate, part: Part, windows: tuple[Window, ...]) -> Aggregate:
    if q.inner is None:
        stat, name = _ROLLED[part]
        return replace(q, field=rollup_field(q.field, name), stat=stat, windows=windows)
    if q.inner.stat is Stat.MEAN:
        inner_stat, name = Stat.MEAN, "mean"
    else:
        inner_stat, name = _INNER[q.inner.stat]
    return replace(q, field=rollup_field(q.field, name), stat=_RAW[part], windows=windows,
                   inner=Rollup(inner_stat, q.inner.every_s))


def _raw_query(q: Aggregate, part: Part, windows: tuple[Window, ...]) -> Aggregate:
    if part is Part.E10:
        # Raw points give the energy mean; `_side_parts` weighs it by the count.
        return replace(q, stat=Stat.MEAN_EXP10, windows=windows)
    return replace(q, stat=_RAW[part], windows=windows)
