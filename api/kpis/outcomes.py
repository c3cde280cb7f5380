"""Outcomes: air quality against the EU limit values, noise, street-lighting energy.

Per station (gateway, device) where a limit value is per station. Metrics are found by field
name in every telemetry kind (`no2`, `pm10`, `pm25`, `noise_laeq`), energy in the `lighting`
kind. Hourly and daily means run in the store; daily windows are local days, so "days above
50 µg/m³" follows the pilot's calendar. Lden's day (07-19), evening (19-23) and night
(23-07) are local times as well, each a window of its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, timedelta
from itertools import pairwise

from api.kpis.catalog import NO2_HOURLY_LIMIT, PM10_DAILY_LIMIT
from api.kpis.context import Context, DeviceKey, KpiValue
from api.kpis.periods import count_days, days, from_ns, to_ns
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


async def no2_hourly_exceedances(ctx: Context) -> list[KpiValue]:
    hours = await _stations(ctx, "no2", ctx.windows, Stat.COUNT, Rollup(Stat.MEAN, 3600.0),
                            NO2_HOURLY_LIMIT)
    present = await _stations(ctx, "no2", ctx.windows, Stat.COUNT)
    table: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    for r in hours:
        table[(r.window, _station(r))] += r.value
    return _per_station(ctx, table, {(r.window, _station(r)) for r in present}, "NO2")


async def pm10_daily_exceedances(ctx: Context) -> list[KpiValue]:
    day_windows = ctx.day_windows()
    rows = await _stations(ctx, "pm10", tuple((lo, hi) for _, lo, hi in day_windows),
                           Stat.MEAN)
    table: dict[tuple[int, DeviceKey], float] = defaultdict(float)
    stations: set[tuple[int, DeviceKey]] = set()
    for r in rows:
        bucket = day_windows[r.window][0]
        stations.add((bucket, _station(r)))
        if r.value > PM10_DAILY_LIMIT:
            table[(bucket, _station(r))] += 1.0
    return _per_station(ctx, table, stations, "PM10")


async def pm25_mean(ctx: Context) -> list[KpiValue]:
    rows = await _stations(ctx, "pm25", ctx.windows, Stat.MEAN)
    table = {(r.window, _station(r)): r.value for r in rows}
    return _per_station(ctx, table, set(table), "PM2.5")


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


KPIS = {f.__name__: f for f in (no2_hourly_exceedances, pm10_daily_exceedances, pm25_mean,
                                noise_lden, lighting_energy_saving)}
