"""Rollup points of a pilot's hours and local days, computed by the store.

For each hour: per raw series and numeric field, the count, sum, min, max and mean (and the
energy sum of levels in dB), asked of the store with the same aggregate queries the KPIs use,
so that the database does the scanning. For each local day, from the hours' rollup points: the
same parts again (`<field>__day_count`, `__day_sum`, ...), the highest hourly mean
(`__day_hmax`), the hours with data (`__day_hours`) and the sum of their means (`__day_msum`),
and for levels each segment's count and energy sum (`__day_e10_h19`: the evening, for Lden), at
the day's local midnight, so that a year is read as 365 points a series, not 8,760. For each
local day: the distinct pseudonymous users of each (service, type), kept as a set (never a
sketch, so weeks, months and returning users stay exact), written in chunks of at most
`CHUNK_USERS` ids a point (InfluxDB's strings are capped at 64 KiB). For each hour and
measurement: the ingest delays as counts per fixed log bucket (`ingest.stores.histogram`), one
string a point (`HIST_FIELD`; at most ~3,900 buckets, well under the cap), from which a delay
percentile is read within the buckets' relative error; per local day the sum of its hours'
(`DAY_HIST_FIELD`). Writing the result for a slot again replaces it: recomputing is idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from api.kpis.periods import from_ns
from api.kpis.rollups.plan import (
    DAY,
    is_level,
    rollup_field,
    segment_field,
    whole_hour_segments,
)
from ingest.model import DEAD_LETTER_MEASUREMENT, DELAY_FIELD, EVENT_MEASUREMENT, Point
from ingest.stores.base import Aggregate, Distinct, Histogram, Stat, Window

SERIES_TAGS = ("gateway", "device", "service", "type")
USERS_MEASUREMENT = "users"  # in the rollup namespace: a local day's set of users
USERS_FIELD = "users"
CHUNK_USERS = 500
HIST_FIELD = rollup_field(DELAY_FIELD, "hist")  # in each measurement, tagged by pilot only
DAY_HIST_FIELD = rollup_field(DELAY_FIELD, DAY + "hist")  # a local day's, summed from its hours
_STATS = {"count": Stat.COUNT, "sum": Stat.SUM, "min": Stat.MIN, "max": Stat.MAX}
# A day part from the day's hour points: (day part, statistic over the hours, hour part).
DAY_PARTS = (("count", Stat.SUM, "count"), ("sum", Stat.SUM, "sum"), ("min", Stat.MIN, "min"),
             ("max", Stat.MAX, "max"), ("hmax", Stat.MAX, "mean"), ("hours", Stat.COUNT, "count"),
             ("msum", Stat.SUM, "mean"))
DAY_LEVEL_PARTS = (("e10", Stat.SUM, "e10"),)
SEGMENT_PARTS = ("count", "e10")  # of a level, per segment of the day: sums of the hours'


def _segments(days: Sequence[Window], tz: ZoneInfo
              ) -> list[tuple[int, tuple[Window, ...], list[int]]]:
    """Per segment start hour: its windows in `days` and, per window, the day's index;
    days whose segments do not start on whole UTC hours have none."""
    by_hour: dict[int, tuple[list[Window], list[int]]] = {}
    for i, (lo, _) in enumerate(days):
        for hour, a, b in whole_hour_segments(from_ns(lo, tz).date(), tz) or ():
            windows, index = by_hour.setdefault(hour, ([], []))
            windows.append((a, b))
            index.append(i)
    return [(hour, tuple(w), index) for hour, (w, index) in sorted(by_hour.items())]


async def hour_points(raw: object, pilot: str, fields: dict[str, list[str]],
                      hours: Sequence[Window]) -> list[Point]:
    """The rollup points of `pilot` for `hours` (whole UTC hours), from the raw reader.

    `fields` maps each measurement to its numeric fields (dead letters are not rolled up)."""
    where = (("pilot", (pilot,)),)
    acc: dict[tuple[int, str, tuple[tuple[str, str], ...]], dict[str, float]] = \
        defaultdict(dict)
    for field, measurements in _numeric_fields(fields).items():
        stats = dict(_STATS)
        if is_level(field):
            stats["e10"] = Stat.MEAN_EXP10
        for part, stat in stats.items():
            rows = await raw.aggregate(Aggregate(  # type: ignore[attr-defined]
                tuple(measurements), field, stat, tuple(hours), by=SERIES_TAGS,
                where=where))
            for r in rows:
                acc[(r.window, r.measurement, r.tags)][rollup_field(field, part)] = r.value
    return _series_points(pilot, hours, {k: finish(v) for k, v in acc.items()})


def finish(parts: dict[str, float]) -> dict[str, float]:
    """One series-hour's rollup fields from the parts the store gave, with the mean and the
    energy sum; a field whose count or sum is missing is left out.

    The parts come from one query each, so a late write landing between them (a backfill
    into this very hour) can give a series a sum but no count. Such a write marked the slot
    before it landed, so the slot is recomputed at a later pass; leaving the field out until
    then keeps this pass from failing (it did: `KeyError: 'battery__count'` in the demo)."""
    by_field: dict[str, dict[str, float]] = defaultdict(dict)
    for name, value in parts.items():
        field, _, part = name.rpartition("__")
        by_field[field][part] = value
    out: dict[str, float] = {}
    for field, got in by_field.items():
        n = got.get("count")
        if not n or "sum" not in got:
            continue
        out.update((rollup_field(field, part), v) for part, v in got.items())
        out[rollup_field(field, "mean")] = got["sum"] / n
        if "e10" in got:
            out[rollup_field(field, "e10")] = got["e10"] * n  # the store gives the mean
    return dict(sorted(out.items()))


async def delay_points(raw: object, pilot: str, measurements: Sequence[str],
                       hours: Sequence[Window], accuracy: float) -> list[Point]:
    """The delay histograms of `pilot` for `hours`: one point per measurement and hour."""
    if not measurements:
        return []
    rows = await raw.histogram(Histogram(  # type: ignore[attr-defined]
        tuple(measurements), DELAY_FIELD, tuple(hours), where=(("pilot", (pilot,)),),
        accuracy=accuracy))
    counts: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
    for r in rows:
        counts[(r.window, r.measurement)][r.bucket] = r.count
    return [Point(measurement, (("pilot", pilot),),
                  {HIST_FIELD: encode_hist(hours[w][0], found)}, hours[w][0])
            for (w, measurement), found in sorted(counts.items())]


async def day_delay_points(rollups: object, pilot: str, measurements: Sequence[str],
                           days: Sequence[Window]) -> list[Point]:
    """The delay histograms of `pilot` for local `days`, the sums of their hours' (read
    through `rollups`): one point per measurement and day, at the day's midnight."""
    if not days:
        return []
    where = (("pilot", (pilot,)),)
    points: list[Point] = []
    for measurement in measurements:
        sets = await rollups.distinct(Distinct(  # type: ignore[attr-defined]
            measurement, HIST_FIELD, tuple(days), where=where))
        for (lo, _), texts in zip(days, sets, strict=True):
            counts: dict[int, int] = {}
            for text in texts:
                add_hist(counts, text)
            if counts:
                points.append(Point(measurement, (("pilot", pilot),),
                                    {DAY_HIST_FIELD: encode_hist(lo, counts)}, lo))
    return points


def encode_hist(hour: int, counts: dict[int, int]) -> str:
    """`hour;k:n,k:n...`, each bucket k as the step from the one before (mostly 1). The hour
    keeps two hours' equal histograms apart in a set of strings (`Distinct`)."""
    out, last = [], 0
    for k in sorted(counts):
        out.append(f"{k - last}:{counts[k]}")
        last = k
    return f"{hour};{','.join(out)}"


def add_hist(into: dict[int, int], text: str) -> None:
    """Add the counts of an encoded histogram to `into`."""
    k = 0
    for entry in text.partition(";")[2].split(","):
        if entry:
            step, _, n = entry.partition(":")
            k += int(step)
            into[k] = into.get(k, 0) + int(n)


def _numeric_fields(fields: dict[str, list[str]]) -> dict[str, list[str]]:
    """Each numeric field and the measurements that hold it (dead letters are not rolled up)."""
    by_field: dict[str, list[str]] = defaultdict(list)
    for measurement, names in fields.items():
        if measurement != DEAD_LETTER_MEASUREMENT:
            for name in names:
                by_field[name].append(measurement)
    return {field: sorted(ms) for field, ms in sorted(by_field.items())}


def _series_points(pilot: str, windows: Sequence[Window],
                   acc: dict[tuple[int, str, tuple[tuple[str, str], ...]], dict[str, float]]
                   ) -> list[Point]:
    points: list[Point] = []
    for (window, measurement, tags), values in acc.items():
        if values:
            kept = tuple((k, v) for k, v in (("pilot", pilot), *tags) if v)
            points.append(Point(measurement, kept, dict(sorted(values.items())),
                                windows[window][0]))
    return points


async def day_points(rollups: object, pilot: str, fields: dict[str, list[str]],
                     days: Sequence[Window], tz: ZoneInfo) -> list[Point]:
    """The day rollup points of `pilot` for local `days` in `tz`, from its hour rollup
    points (read through `rollups`): whole hours only, so a day's parts are its hours' parts
    merged; for levels also each segment's count and energy sum (`segment_field`)."""
    where = (("pilot", (pilot,)),)
    acc: dict[tuple[int, str, tuple[tuple[str, str], ...]], dict[str, float]] = \
        defaultdict(dict)
    for field, measurements in _numeric_fields(fields).items():
        parts = DAY_PARTS + (DAY_LEVEL_PARTS if is_level(field) else ())
        for part, stat, hour_part in parts:
            rows = await rollups.aggregate(Aggregate(  # type: ignore[attr-defined]
                tuple(measurements), rollup_field(field, hour_part), stat, tuple(days),
                by=SERIES_TAGS, where=where))
            for r in rows:
                acc[(r.window, r.measurement, r.tags)][rollup_field(field, DAY + part)] = \
                    r.value
        for hour, windows, day_of in _segments(days, tz) if is_level(field) else ():
            for part in SEGMENT_PARTS:
                rows = await rollups.aggregate(Aggregate(  # type: ignore[attr-defined]
                    tuple(measurements), rollup_field(field, part), Stat.SUM, windows,
                    by=SERIES_TAGS, where=where))
                for r in rows:
                    acc[(day_of[r.window], r.measurement, r.tags)][
                        segment_field(field, part, hour)] = r.value
    # A series whose hours gave a sum but no count yet (see `finish`) waits for its
    # recompute; a day point never holds a part without the count it is read with.
    for values in acc.values():
        for name in [k for k in values if not k.endswith("__day_count")]:
            if rollup_field(name.rpartition("__")[0], DAY + "count") not in values:
                del values[name]
    return _series_points(pilot, days, acc)


async def user_points(raw: object, pilot: str, days: Sequence[Window]) -> list[Point]:
    """The day sets of `pilot` for local `days`: one or more points per (day, service, type)."""
    where = (("pilot", (pilot,)),)
    kinds = await raw.aggregate(Aggregate(  # type: ignore[attr-defined]
        (EVENT_MEASUREMENT,), "value", Stat.COUNT, tuple(days), by=("service", "type"),
        where=where))
    combos: dict[tuple[str, str], list[int]] = defaultdict(list)
    for r in kinds:
        combos[(r.tag("service"), r.tag("type"))].append(r.window)
    points: list[Point] = []
    for (service, type_), windows in sorted(combos.items()):
        filters = (*where, ("service", (service,)), ("type", (type_,)))
        sets = await raw.distinct(Distinct(  # type: ignore[attr-defined]
            EVENT_MEASUREMENT, "user", tuple(days[w] for w in windows), where=filters))
        for w, users in zip(windows, sets, strict=True):
            ordered = sorted(users)
            tags = tuple((k, v) for k, v in (("pilot", pilot), ("service", service),
                                              ("type", type_)) if v)
            for chunk in range(0, max(len(ordered), 1), CHUNK_USERS):
                points.append(Point(USERS_MEASUREMENT, tags, {
                    USERS_FIELD: "\n".join(ordered[chunk:chunk + CHUNK_USERS])},
                    days[w][0] + chunk // CHUNK_USERS))
    return points


def users_of(chunks: set[str]) -> set[str]:
    """The users in a set of day-set chunks."""
    return {user for chunk in chunks for user in chunk.split("\n") if user}
