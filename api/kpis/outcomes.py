"""Outcomes: air quality against the EU limit values, noise, street-lighting energy.

The limit values themselves are the catalogue's (`Kpi.limits`): the functions here read each
threshold from there, so a number of the law is written once.

Per station (gateway, device) where a limit value is per station. Metrics are found by field
name in every telemetry kind (`no2`, `pm10`, `pm25`, `noise_laeq`), energy in the `lighting`
kind. Hourly and daily means run in the store; daily windows are local days, so "days above
the daily limit value" follows the pilot's calendar. Lden's day (07-19), evening (19-23) and
night (23-07) are local times as well, each a window of its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import date, timedelta

from api.kpis.context import Context, DeviceKey, KpiValue
from api.kpis.definitions import BY_ID
from api.kpis.periods import LDEN_PARTS as _LDEN_PARTS
from api.kpis.periods import Bucket, count_days, days, from_ns, local_at, midnight
from api.texts import N_, Msg
from ingest.stores.base import Aggregate, AggRow, Rollup, Stat, Window

_STATION = ("gateway", "device")
LIGHTING = "lighting"


def _station(r: AggRow) -> DeviceKey:
    return r.tag("gateway"), r.tag("device")


def _per_station(ctx: Context, table: dict[tuple[int, DeviceKey], float],
                 stations: set[tuple[int, DeviceKey]], metric: str) -> list[KpiValue]:
    """One value per bucket and station with data; a null per bucket without any."""
    out: list[KpiValue] = []
    for b in ctx.buckets:
        here = sorted(k for i, k in stations if i == b.index)
        if not here:
            out.append(ctx.value(b, None, Msg("no {metric} readings in the period", metric=metric)))
        for key in here:
            out.append(ctx.value(b, table.get((b.index, key), 0.0),
                                 dims=(("gateway", key[0]), ("device", key[1]))))
    return out


async def _stations(ctx: Context, field: str, windows: tuple[Window, ...], stat: Stat,
                    inner: Rollup | None = None, above: float | None = None
                    ) -> list[AggRow]:
    kinds = await ctx.telemetry()
    if not kinds:
        return []
    return await ctx.store.aggregate(Aggregate(kinds, field, stat, windows, by=_STATION,
                                               where=ctx.where, inner=inner, above=above))


async def _hours_above(ctx: Context, field: str, limit: float, windows: tuple[Window, ...]
                       ) -> dict[tuple[int, DeviceKey], float]:
    """Per window and station, the hours whose mean is above `limit`. The highest hourly mean
    of each window comes first (a day's is a day rollup of its own), and hours are counted
    only in the windows where it is above: exceedances are rare, a year of hours is not."""
    highest = await _stations(ctx, field, windows, Stat.MAX, Rollup(Stat.MEAN, 3600.0))
    above = sorted({r.window for r in highest if r.value > limit})
    counts: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    if above:
        for r in await _stations(ctx, field, tuple(windows[w] for w in above), Stat.COUNT,
                                 Rollup(Stat.MEAN, 3600.0), limit):
            counts[(above[r.window], _station(r))] += r.value
    return counts


async def _hourly_exceedances(ctx: Context, field: str, limit: float) -> list[KpiValue]:
    day_windows = ctx.day_windows()
    windows = tuple((lo, hi) for _, lo, hi in day_windows)
    present = await _stations(ctx, field, windows, Stat.COUNT)
    table: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    for (w, station), n in (await _hours_above(ctx, field, limit, windows)).items():
        table[(day_windows[w][0], station)] += n
    return _per_station(ctx, table, {(day_windows[r.window][0], _station(r)) for r in present},
                        _NAMES[field])


async def _daily_exceedances(ctx: Context, field: str, limit: float) -> list[KpiValue]:
    day_windows = ctx.day_windows()
    rows = await _stations(ctx, field, tuple((lo, hi) for _, lo, hi in day_windows),
                           Stat.MEAN)
    table: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    stations: set[tuple[int, DeviceKey]] = set()
    for r in rows:
        bucket = day_windows[r.window][0]
        stations.add((bucket, _station(r)))
        if r.value > limit:
            table[(bucket, _station(r))] += 1.0
    return _per_station(ctx, table, stations, _NAMES[field])


async def _mean(ctx: Context, field: str) -> list[KpiValue]:
    rows = await _stations(ctx, field, ctx.windows, Stat.MEAN)
    table = {(r.window, _station(r)): r.value for r in rows}
    return _per_station(ctx, table, set(table), _NAMES[field])


# Exceedance KPIs: (field, averaging); the threshold is the catalogue's limit value.
_EXCEEDANCES = {
    "no2_hourly_exceedances": ("no2", _hourly_exceedances),
    "no2_daily_exceedances": ("no2", _daily_exceedances),
    "pm10_daily_exceedances": ("pm10", _daily_exceedances),
    "pm10_daily_exceedances_2030": ("pm10", _daily_exceedances),
    "pm25_daily_exceedances": ("pm25", _daily_exceedances),
}
_MEANS = {"no2_mean": "no2", "pm10_mean": "pm10", "pm25_mean": "pm25"}
_NAMES = {"no2": "NO2", "pm10": "PM10", "pm25": "PM2.5"}


def _exceedance_kpi(kpi_id: str) -> Callable[[Context], Awaitable[list[KpiValue]]]:
    field, count = _EXCEEDANCES[kpi_id]

    async def kpi(ctx: Context) -> list[KpiValue]:
        return await count(ctx, field, BY_ID[kpi_id].threshold)
    return kpi


def _mean_kpi(kpi_id: str) -> Callable[[Context], Awaitable[list[KpiValue]]]:
    async def kpi(ctx: Context) -> list[KpiValue]:
        return await _mean(ctx, _MEANS[kpi_id])
    return kpi


def _year_to_date(ctx: Context) -> tuple[tuple[Window, ...], dict[int, list[int]]]:
    """The local days from 1 January (local) of the year each started bucket ends in up to
    its end (or now, in a period in progress), the last one clipped: each distinct day once,
    and per bucket index the indexes of its days."""
    per_bucket: dict[int, list[Window]] = {}
    for b in ctx.buckets:
        if b.lo < ctx.now_ns:
            end = min(b.hi, ctx.now_ns)
            year = Bucket(b.index, midnight(date(from_ns(end - 1, ctx.tz).year, 1, 1), ctx.tz),
                          end)
            per_bucket[b.index] = [(lo, hi) for _, lo, hi in days(year, ctx.tz)]
    windows = tuple(sorted({w for ws in per_bucket.values() for w in ws}))
    index = {w: i for i, w in enumerate(windows)}
    return windows, {b: [index[w] for w in ws] for b, ws in per_bucket.items()}


async def exceedances_left(ctx: Context) -> list[KpiValue]:
    """Per bucket: each regime's allowance minus the exceedances from 1 January (local) of
    the year the bucket ends in, up to the bucket's end (or now, in a period in progress).
    Each day of the years is read once, however many buckets count it (a month at day grain
    would read its year thirty times)."""
    windows, year_of = _year_to_date(ctx)
    days_of: dict[str, dict[DeviceKey, set[int]]] = {}  # field -> station -> days with data
    exceeded: dict[str, dict[tuple[int, DeviceKey], float]] = {}  # kpi -> (day, station) -> n
    for field in sorted({field for field, _ in _EXCEEDANCES.values()}) if windows else ():
        means = {(r.window, _station(r)): r.value
                 for r in await _stations(ctx, field, windows, Stat.MEAN)}
        days_of[field] = defaultdict(set)
        for w, key in means:
            days_of[field][key].add(w)
        for kpi_id, (kpi_field, count) in _EXCEEDANCES.items():
            threshold = BY_ID[kpi_id].threshold
            if kpi_field == field:
                exceeded[kpi_id] = await _hours_above(ctx, field, threshold, windows) \
                    if count is _hourly_exceedances else \
                    {k: 1.0 for k, mean in means.items() if mean > threshold}
    out: list[KpiValue] = []
    for b in ctx.buckets:
        mine = set(year_of.get(b.index, ()))
        before = len(out)
        for kpi_id, (field, _) in _EXCEEDANCES.items():
            totals = {key: 0.0 for key, have in days_of.get(field, {}).items()
                      if not mine.isdisjoint(have)}
            for (w, key), n in exceeded.get(kpi_id, {}).items():
                if w in mine:
                    totals[key] += n
            for key, n in sorted(totals.items()):
                for limit in BY_ID[kpi_id].limits:
                    if limit.allowed is not None:
                        out.append(ctx.value(b, limit.allowed - n, dims=(
                            ("indicator", kpi_id), ("regime", limit.regime.value),
                            ("gateway", key[0]), ("device", key[1]))))
        if len(out) == before:
            out.append(ctx.value(b, None, N_("the period has not started") if b.lo >= ctx.now_ns
                                 else N_("no air-quality readings this year")))
    return out


async def noise_lden(ctx: Context) -> list[KpiValue]:
    # Per station, local day and Lden part: the energy mean and the count of LAeq readings
    # (rollups hold both per segment of a day); a part's energy mean over several kinds is
    # their count-weighted mean, exactly the mean over the part's readings. A night counts
    # for the day it starts on (23:00 to 07:00 the next day), in that day's bucket; the hours
    # of a night begun before the period, or after its end, are left out.
    period = (ctx.buckets[0].lo, ctx.buckets[-1].hi) if ctx.buckets else (0, 0)
    windows: list[Window] = []
    parts: list[tuple[int, str, date]] = []  # per window: bucket, part, day
    for b in ctx.buckets:
        for day, _, _ in days(b, ctx.tz):
            for name, start, stop, _, _ in _LDEN_PARTS:
                lo = max(local_at(day, start, ctx.tz), period[0])
                hi = min(local_at(day + timedelta(days=stop < start), stop, ctx.tz), period[1])
                if lo < hi:
                    windows.append((lo, hi))
                    parts.append((b.index, name, day))
    energy_rows = await _stations(ctx, "noise_laeq", tuple(windows), Stat.MEAN_EXP10)
    kinds: dict[DeviceKey, set[str]] = defaultdict(set)
    for r in energy_rows:
        kinds[_station(r)].add(r.measurement)
    # The counts weigh the kinds of a station that has several; one kind needs no weights.
    counts = {(r.window, _station(r), r.measurement): r.value for r in
              await _stations(ctx, "noise_laeq", tuple(windows), Stat.COUNT)
              } if any(len(k) > 1 for k in kinds.values()) else {}
    sums: dict[tuple[int, DeviceKey, str, date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in energy_rows:
        bucket, part, day = parts[r.window]
        n = counts.get((r.window, _station(r), r.measurement), 1.0)
        acc = sums[(bucket, _station(r), part, day)]
        acc[0] += r.value * n
        acc[1] += n
    energy: dict[tuple[int, DeviceKey, str], list[float]] = defaultdict(list)
    for (bucket, station, part, _), (total, n) in sorted(sums.items()):
        energy[(bucket, station, part)].append(total / n)  # one per day: days weigh equally
    return _lden_values(ctx, energy)


def _either(names: list[str]) -> Msg:
    """`a or b or c`, each name and each "or" translated in a report."""
    said = Msg(names[0])
    for name in names[1:]:
        said = Msg("{first} or {second}", first=said, second=Msg(name))
    return said


def _lden_values(ctx: Context, energy: dict[tuple[int, DeviceKey, str], list[float]]
                 ) -> list[KpiValue]:
    out: list[KpiValue] = []
    for b in ctx.buckets:
        stations = sorted({k for i, k, _ in energy if i == b.index})
        if not stations:
            out.append(ctx.value(b, None, N_("no noise readings in the period")))
        for key in stations:
            dims = (("gateway", key[0]), ("device", key[1]))
            total, missing = 0.0, []
            for name, _, _, penalty, hours in _LDEN_PARTS:
                days_energy = energy.get((b.index, key, name))
                if not days_energy:
                    missing.append(name)
                    continue
                total += hours * sum(days_energy) / len(days_energy) * 10 ** (penalty / 10)
            out.append(ctx.value(b, 10 * math.log10(total / 24) if not missing else None,
                                 Msg("no {parts} noise readings in the period",
                                     parts=_either(missing)) if missing else None,
                                 dims))
    return out


async def lighting_energy_saving(ctx: Context) -> list[KpiValue]:
    baseline = ctx.pilot.lighting_baseline_kwh_per_day
    rows = await ctx.store.aggregate(Aggregate((LIGHTING,), "energy", Stat.SUM, ctx.windows,
                                               where=ctx.where))
    used_wh = {r.window: r.value for r in rows}
    out: list[KpiValue] = []
    for b in ctx.buckets:
        hi = min(b.hi, ctx.now_ns)
        if baseline is None:
            out.append(ctx.value(b, None, N_("no lighting baseline registered for the pilot")))
        elif b.index not in used_wh or hi <= b.lo:
            out.append(ctx.value(b, None, N_("no lighting energy readings in the period")))
        else:
            expected_kwh = baseline * count_days(b.lo, hi)
            out.append(ctx.value(b, 100.0 * (1.0 - used_wh[b.index] / 1000.0 / expected_kwh),
                                 used_kwh=used_wh[b.index] / 1000.0))
    return out


KPIS: dict[str, Callable[[Context], Awaitable[list[KpiValue]]]] = {
    **{kpi_id: _exceedance_kpi(kpi_id) for kpi_id in _EXCEEDANCES},
    **{kpi_id: _mean_kpi(kpi_id) for kpi_id in _MEANS},
    "exceedances_left": exceedances_left, "noise_lden": noise_lden,
    "lighting_energy_saving": lighting_energy_saving}
