"""Technology push: does the deployed technology work? (Definitions in `catalog.py`.)

A device is seen when it sends a reading or an event (both carry `ingest_delay_s`, so that
one field counts them in every measurement). Expected reporting intervals come from the
registry, `default_interval_s` for devices without one (unregistered included). Devices are
grouped by interval so that one store query per distinct interval answers for all of them;
periods in progress count up to now only.
"""

from __future__ import annotations

import math
from collections import defaultdict

from api.kpis.context import Context, DeviceKey, KpiValue
from api.kpis.periods import NS
from ingest.model import DEAD_LETTER_MEASUREMENT, DELAY_FIELD, EVENT_MEASUREMENT
from ingest.stores.base import Aggregate, AggRow, Rollup, Stat, Window

_NOT_STARTED = "the period has not started"
_NO_SENSORS = "no sensors registered or reporting in the period"


def _until_now(ctx: Context) -> dict[int, Window]:
    """Each started bucket's window, cut at now."""
    return {b.index: (b.lo, min(b.hi, ctx.now_ns)) for b in ctx.buckets if b.lo < ctx.now_ns}


def _groups(ctx: Context, keys: set[DeviceKey]) -> dict[float, set[DeviceKey]]:
    """Registered devices by expected interval; the default interval is always a group (it
    also holds every unregistered device)."""
    groups: dict[float, set[DeviceKey]] = defaultdict(set)
    groups[ctx.default_interval_s] = set()
    for key in keys:
        groups[ctx.interval_s(key)].add(key)
    return groups


async def _by_interval(ctx: Context, measurements: tuple[str, ...], stat: Stat,
                       windows: dict[int, Window], inner: bool, keys: set[DeviceKey],
                       span_s: float = 0.0) -> list[tuple[int, DeviceKey, float]]:
    """(bucket, device, value) of `stat` of the devices' points, one query per interval;
    `inner` rolls up per interval first; `span_s` > 0 replaces each window by the last
    `span_s` intervals before its end. Rows of devices with another interval are dropped."""
    out: list[tuple[int, DeviceKey, float]] = []
    if not measurements or not windows:
        return out
    order = sorted(windows)
    for interval, members in _groups(ctx, keys).items():
        wins = tuple((hi - round(span_s * interval * NS), hi) if span_s else (lo, hi)
                     for lo, hi in (windows[i] for i in order))
        where = ctx.where
        if interval != ctx.default_interval_s:
            where += (("device", tuple(sorted({d for _, d in members}))),)
        rows: list[AggRow] = await ctx.store.aggregate(Aggregate(
            measurements, DELAY_FIELD, stat, wins, by=("gateway", "device"), where=where,
            inner=Rollup(Stat.COUNT, interval) if inner else None))
        for r in rows:
            key = (r.tag("gateway"), r.tag("device"))
            if ctx.interval_s(key) == interval:
                out.append((order[r.window], key, r.value))
    return out


def _sensors(ctx: Context) -> set[DeviceKey]:
    return {(d.gateway, d.id) for d in ctx.pilot.devices if d.kind}


async def devices_deployed(ctx: Context) -> list[KpiValue]:
    measurements = (*await ctx.telemetry(), EVENT_MEASUREMENT)
    rows = await ctx.store.aggregate(Aggregate(
        measurements, DELAY_FIELD, Stat.COUNT, ctx.windows, by=("gateway", "device"),
        where=ctx.where))
    seen: dict[int, set[DeviceKey]] = defaultdict(set)
    for r in rows:
        seen[r.window].add((r.tag("gateway"), r.tag("device")))
    registered = set(ctx.devices)
    return [ctx.value(b, float(len(registered | seen[b.index])),
                      unregistered=len(seen[b.index] - registered)) for b in ctx.buckets]


async def devices_online(ctx: Context) -> list[KpiValue]:
    windows = _until_now(ctx)
    measurements = (*await ctx.telemetry(), EVENT_MEASUREMENT)
    rows = await _by_interval(ctx, measurements, Stat.COUNT, windows, False, set(ctx.devices),
                              span_s=2.0)
    online: dict[int, set[DeviceKey]] = defaultdict(set)
    for bucket, key, _ in rows:
        online[bucket].add(key)
    return [ctx.value(b, float(len(online[b.index])) if b.index in windows else None,
                      _NOT_STARTED) for b in ctx.buckets]


def _expected(ctx: Context, window: Window, key: DeviceKey) -> int:
    return math.ceil((window[1] - window[0]) / (ctx.interval_s(key) * NS))


async def _per_sensor(ctx: Context, inner: bool) -> tuple[dict[int, Window],
                                                          dict[int, dict[DeviceKey, float]]]:
    """Per started bucket and sensor: intervals with data (`inner`) or readings."""
    windows = _until_now(ctx)
    rows = await _by_interval(ctx, await ctx.telemetry(), Stat.COUNT, windows, inner,
                              _sensors(ctx))
    found: dict[int, dict[DeviceKey, float]] = {i: dict.fromkeys(_sensors(ctx), 0.0)
                                               for i in windows}
    for bucket, key, value in rows:  # a sensor in two kinds: its better one
        found[bucket][key] = max(found[bucket].get(key, 0.0), value)
    return windows, found


async def availability(ctx: Context) -> list[KpiValue]:
    windows, found = await _per_sensor(ctx, inner=True)
    out: list[KpiValue] = []
    for b in ctx.buckets:
        sensors = found.get(b.index)
        if sensors is None:
            out.append(ctx.value(b, None, _NOT_STARTED))
        elif not sensors:
            out.append(ctx.value(b, None, _NO_SENSORS))
        else:
            shares = [min(1.0, n / _expected(ctx, windows[b.index], k)) for k, n in
                      sensors.items()]
            out.append(ctx.value(b, 100.0 * sum(shares) / len(shares), sensors=len(shares)))
    return out


async def data_completeness(ctx: Context) -> list[KpiValue]:
    windows, found = await _per_sensor(ctx, inner=False)
    out: list[KpiValue] = []
    for b in ctx.buckets:
        sensors = found.get(b.index)
        if sensors is None:
            out.append(ctx.value(b, None, _NOT_STARTED))
        elif not sensors:
            out.append(ctx.value(b, None, _NO_SENSORS))
        else:
            expected = {k: _expected(ctx, windows[b.index], k) for k in sensors}
            got = sum(min(n, expected[k]) for k, n in sensors.items())
            out.append(ctx.value(b, 100.0 * got / sum(expected.values()),
                                 sensors=len(sensors)))
    return out


async def rejection_rate(ctx: Context) -> list[KpiValue]:
    # Dead letters carry no pilot tag: a native topic names the pilot, so count by prefix.
    # Dead letters of other formats' topics cannot be attributed and are not counted.
    letters = await ctx.store.aggregate(Aggregate(
        (DEAD_LETTER_MEASUREMENT,), "topic", Stat.COUNT, ctx.windows,
        prefix=f"citypilot/v1/{ctx.pilot.id}/"))
    stored = await ctx.store.aggregate(Aggregate(
        (*await ctx.telemetry(), EVENT_MEASUREMENT), DELAY_FIELD, Stat.COUNT, ctx.windows,
        where=ctx.where))
    rejected: dict[int, float] = defaultdict(float)
    accepted: dict[int, float] = defaultdict(float)
    for r in letters:
        rejected[r.window] += r.value
    for r in stored:
        accepted[r.window] += r.value
    out: list[KpiValue] = []
    for b in ctx.buckets:
        total = rejected[b.index] + accepted[b.index]
        out.append(ctx.value(b, 100.0 * rejected[b.index] / total if total else None,
                             "nothing received in the period", rejected=rejected[b.index]))
    return out


async def ingest_delay_p95(ctx: Context) -> list[KpiValue]:
    rows = await ctx.store.aggregate(Aggregate(
        (*await ctx.telemetry(), EVENT_MEASUREMENT), DELAY_FIELD, Stat.P95, ctx.windows,
        where=ctx.where))
    table = {(r.window, r.measurement): r.value for r in rows}
    return ctx.per_dimension("kind", sorted({m for _, m in table}), table, default=None,
                             missing="no {name} readings in the period",
                             nothing="no readings or events in the period")


KPIS = {f.__name__: f for f in (devices_deployed, devices_online, availability,
                                data_completeness, rejection_rate, ingest_delay_p95)}
