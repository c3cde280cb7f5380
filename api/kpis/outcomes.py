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
from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise

from api.kpis.catalog import BY_ID
from api.kpis.context import Context, DeviceKey, KpiValue
from api.kpis.periods import Bucket, count_days, days, from_ns, midnight, to_ns
from ingest.stores.base import Aggregate, AggRow, Rollup, Stat, Window

_STATION = ("gateway", "device")
LIGHTING = "lighting"
# (name, local start hour, local end hour (next day when smaller), penalty dB, hours)
_LDEN_PARTS = (("day", 7, 19, 0.0, 12), ("evening", 19, 23, 5.0, 4), ("night", 23, 7, 10.0, 8))


def _station(r: AggRow) -> DeviceKey:
    return r.tag("gateway"), r.tag("device")


def _per_station(ctx: Context, table: dict[tuple[int, DeviceKey], float],
                 stations: set[tuple[int, DeviceKey]], metric: str) -> list[KpiValue]:
    """One value per bucket and station with data; a null per bucket without any."""
    out: list[KpiValue] = []
    for b in ctx.buckets:
        here = sorted(k for i, k in stations if i == b.index)
        if not here:
            out.append(ctx.value(b, None, f"no {metric} readings in the period"))
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


async def _hourly_exceedances(ctx: Context, field: str, limit: float) -> list[KpiValue]:
    hours = await _stations(ctx, field, ctx.windows, Stat.COUNT, Rollup(Stat.MEAN, 3600.0),
                            limit)
    present = await _stations(ctx, field, ctx.windows, Stat.COUNT)
    table: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    for r in hours:
        table[(r.window, _station(r))] += r.value
    return _per_station(ctx, table, {(r.window, _station(r)) for r in present}, _NAMES[field])


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


async def exceedances_left(ctx: Context) -> list[KpiValue]:
    """Per bucket: each regime's allowance minus the exceedances from 1 January (local) of
    the year the bucket ends in, up to the bucket's end (or now, in a period in progress)."""
    started = [b for b in ctx.buckets if b.lo < ctx.now_ns]
    to_date: dict[tuple[int, int], int] = {}  # year-to-date window -> bucket index
    for b in started:
        end = min(b.hi, ctx.now_ns)
        to_date[(midnight(date(from_ns(end - 1, ctx.tz).year, 1, 1), ctx.tz), end)] = b.index
    year = replace(ctx, buckets=[Bucket(i, lo, hi) for (lo, hi), i in to_date.items()])
    counted: dict[int, list[tuple[str, KpiValue]]] = defaultdict(list)
    for kpi_id, (field, count) in (_EXCEEDANCES.items() if started else ()):
        for v in await count(year, field, BY_ID[kpi_id].threshold):
            if v.value is not None:
                counted[to_date[(v.start, v.end)]].append((kpi_id, v))
    out: list[KpiValue] = []
    for b in ctx.buckets:
        if not counted[b.index]:
            out.append(ctx.value(b, None, "the period has not started" if b.lo >= ctx.now_ns
                                 else "no air-quality readings this year"))
        for kpi_id, v in counted[b.index]:
            for limit in BY_ID[kpi_id].limits:
                if limit.allowed is not None and v.value is not None:
                    out.append(ctx.value(b, limit.allowed - v.value, dims=(
                        ("indicator", kpi_id), ("regime", limit.regime.value), *v.dims)))
    return out


async def noise_lden(ctx: Context) -> list[KpiValue]:
    # Per station and local hour: the energy mean and the count of LAeq readings (two store
    # queries over adjacent hours); a part's energy mean over a day is their weighted mean,
    # exactly the mean over the part's readings.
    windows = tuple(w for b in ctx.buckets for w in _hours(b.lo, b.hi, ctx))
    energy_rows = await _stations(ctx, "noise_laeq", windows, Stat.MEAN_EXP10)
    counts = {(r.window, _station(r), r.measurement): r.value for r in
              await _stations(ctx, "noise_laeq", windows, Stat.COUNT)}
    bucket_of = {day: b.index for b in ctx.buckets for day, _, _ in days(b, ctx.tz)}
    sums: dict[tuple[int, DeviceKey, str, date], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in energy_rows:
        local = from_ns(windows[r.window][0], ctx.tz)
        # A night counts for the day it starts on (23:00 to 07:00 the next day), in that
        # day's bucket; early hours of a night begun before the period are left out.
        day = local.date() - timedelta(days=1) if local.hour < 7 else local.date()
        bucket = bucket_of.get(day)
        if bucket is None:
            continue
        part = "day" if 7 <= local.hour < 19 else "evening" if 19 <= local.hour < 23 \
            else "night"
        n = counts[(r.window, _station(r), r.measurement)]
        acc = sums[(bucket, _station(r), part, day)]
        acc[0] += r.value * n
        acc[1] += n
    energy: dict[tuple[int, DeviceKey, str], list[float]] = defaultdict(list)
    for (bucket, station, part, _), (total, n) in sorted(sums.items()):
        energy[(bucket, station, part)].append(total / n)  # one per day: days weigh equally
    return _lden_values(ctx, energy)


def _hours(lo: int, hi: int, ctx: Context) -> list[Window]:
    """[lo, hi) cut at every local whole hour."""
    first = from_ns(lo, ctx.tz).replace(minute=0, second=0, microsecond=0)
    edges = [lo]
    step = 3600 * 10**9
    edge = to_ns(first) + step
    while edge < hi:
        edges.append(edge)
        edge += step
    edges.append(hi)
    return list(pairwise(edges))


def _lden_values(ctx: Context, energy: dict[tuple[int, DeviceKey, str], list[float]]
                 ) -> list[KpiValue]:
    out: list[KpiValue] = []
    for b in ctx.buckets:
        stations = sorted({k for i, k, _ in energy if i == b.index})
        if not stations:
            out.append(ctx.value(b, None, "no noise readings in the period"))
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
                                 f"no {' or '.join(missing)} noise readings in the period",
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
            out.append(ctx.value(b, None, "no lighting baseline registered for the pilot"))
        elif b.index not in used_wh or hi <= b.lo:
            out.append(ctx.value(b, None, "no lighting energy readings in the period"))
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
