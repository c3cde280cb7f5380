"""Technology push: does the deployed technology work? (Definitions in `definitions.py`.)

A device is seen when it sends a reading or an event (both carry `ingest_delay_s`, so that
one field counts them in every measurement). Expected reporting intervals come from the
registry, `default_interval_s` for devices without one (unregistered included).
Availability counts hourly slots (or the interval, when longer): per-reading slots would
make the store roll up every reading. Periods in progress count up to now only, and a sensor
counts from its installation (`installed` in the registry, else the hour of its first
reading): a pilot adds devices every month, and a device not yet there is not unavailable.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict

from api.kpis.context import Context, DeviceKey, KpiValue
from api.kpis.periods import NS, Bucket, midnight
from api.texts import N_
from ingest.model import DEAD_LETTER_MEASUREMENT, DELAY_FIELD, EVENT_MEASUREMENT
from ingest.stores.base import Aggregate, Rollup, Stat, Window

_NOT_STARTED = N_("the period has not started")
_NO_SENSORS = N_("no sensors installed or reporting in the period")
_HOUR_NS = 3600 * NS


def _until_now(ctx: Context) -> dict[int, Window]:
    """Each started bucket's window, cut at now."""
    return {b.index: (b.lo, min(b.hi, ctx.now_ns)) for b in ctx.buckets if b.lo < ctx.now_ns}


def _slot_s(ctx: Context, key: DeviceKey) -> float:
    """The slot a sensor's availability is counted in: its interval, at least an hour (the
    hourly data capture of air-quality practice; finer slots cost a rollup per reading)."""
    return max(ctx.interval_s(key), 3600.0)


async def _slots_with_data(ctx: Context, windows: dict[int, Window], keys: set[DeviceKey]
                           ) -> list[tuple[int, DeviceKey, float]]:
    """(bucket, sensor, slots with a reading), one store query per distinct slot length;
    the default slot's query also finds the unregistered sensors."""
    measurements = await ctx.telemetry()
    if not measurements or not windows:
        return []
    default = max(ctx.default_interval_s, 3600.0)
    groups: dict[float, set[DeviceKey]] = defaultdict(set)
    groups[default] = set()
    for key in keys:
        groups[_slot_s(ctx, key)].add(key)
    order = sorted(windows)
    out: list[tuple[int, DeviceKey, float]] = []
    for slot, members in groups.items():
        devices = ("device", tuple(sorted({d for _, d in members})))
        where = ctx.where if slot == default else (*ctx.where, devices)
        rows = await ctx.store.aggregate(Aggregate(
            measurements, DELAY_FIELD, Stat.COUNT, tuple(windows[i] for i in order),
            by=("gateway", "device"), where=where, inner=Rollup(Stat.COUNT, slot)))
        out += [(order[r.window], (r.tag("gateway"), r.tag("device")), r.value) for r in rows
                if _slot_s(ctx, (r.tag("gateway"), r.tag("device"))) == slot]
    return out


async def _readings(ctx: Context, windows: dict[int, Window]
                    ) -> list[tuple[int, DeviceKey, float]]:
    """(bucket, sensor, readings) in one store query."""
    measurements = await ctx.telemetry()
    if not measurements or not windows:
        return []
    order = sorted(windows)
    rows = await ctx.store.aggregate(Aggregate(
        measurements, DELAY_FIELD, Stat.COUNT, tuple(windows[i] for i in order),
        by=("gateway", "device"), where=ctx.where))
    return [(order[r.window], (r.tag("gateway"), r.tag("device")), r.value) for r in rows]


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
    def registered(b: Bucket) -> set[DeviceKey]:  # those installed before the bucket ends
        return {k for k, d in ctx.devices.items()
                if d.installed is None or midnight(d.installed, ctx.tz) < b.hi}
    return [ctx.value(b, float(len(registered(b) | seen[b.index])),
                      unregistered=len(seen[b.index] - set(ctx.devices))) for b in ctx.buckets]


async def devices_online(ctx: Context) -> list[KpiValue]:
    # One `last_seen` per period end (a few concurrent), over the longest 2 x interval;
    # each device is then judged by its own interval.
    measurements = (*await ctx.telemetry(), EVENT_MEASUREMENT)
    ends = {i: hi for i, (_, hi) in _until_now(ctx).items()}
    longest = max([ctx.default_interval_s] + [ctx.interval_s(k) for k in ctx.devices])
    gate = asyncio.Semaphore(4)

    async def online_at(end: int) -> int:
        async with gate:
            seen = await ctx.store.last_seen(measurements, DELAY_FIELD,
                                             start=end - round(2 * longest * NS), end=end,
                                             where=ctx.where)
        return len({(s.gateway, s.device) for s in seen
                    if end - s.ts <= 2 * ctx.interval_s((s.gateway, s.device)) * NS})

    counts = dict(zip(ends, await asyncio.gather(*(online_at(e) for e in ends.values())),
                      strict=True))
    return [ctx.value(b, float(counts[b.index]) if b.index in counts else None,
                      _NOT_STARTED) for b in ctx.buckets]


async def _installed(ctx: Context) -> dict[DeviceKey, int]:
    """From when each sensor counts (ns): the local midnight of its registered installation
    day, else the start of the UTC hour of its first reading before now (the hour, so that
    rollups, which hold hours, answer it exactly). A sensor with neither is absent: deployed
    but silent, it counts for the whole period."""
    out = {key: midnight(d.installed, ctx.tz) for key, d in ctx.devices.items()
           if d.kind and d.installed}
    measurements = await ctx.telemetry()
    first = await ctx.store.first_seen(measurements, DELAY_FIELD, end=ctx.now_ns,
                                       where=ctx.where) if measurements else []
    reported: dict[DeviceKey, int] = {}
    for s in first:
        hour = s.ts // _HOUR_NS * _HOUR_NS
        reported[(s.gateway, s.device)] = min(reported.get((s.gateway, s.device), hour), hour)
    return reported | out


def _expected(lo: int, hi: int, every_s: float) -> int:
    return math.ceil((hi - lo) / (every_s * NS))


def _slots_from(window: Window, since: int | None, slot_s: float) -> int:
    """The slots of `window` (aligned to its start) from the one holding `since`."""
    lo, hi = window
    skipped = 0 if since is None or since <= lo else (since - lo) // round(slot_s * NS)
    return _expected(lo, hi, slot_s) - skipped


async def _per_sensor(ctx: Context, slots: bool) -> tuple[
        dict[int, Window], dict[int, dict[DeviceKey, float]], dict[DeviceKey, int]]:
    """Per started bucket and sensor (registered or reporting, installed before the bucket
    ends): slots with data, or readings; a sensor reporting in two kinds counts by its
    better one. Also when each sensor counts from (`_installed`)."""
    windows = _until_now(ctx)
    rows = await (_slots_with_data(ctx, windows, _sensors(ctx)) if slots
                  else _readings(ctx, windows))
    since = await _installed(ctx) if windows else {}

    def there(key: DeviceKey, bucket: int) -> bool:
        return key not in since or since[key] < windows[bucket][1]

    found: dict[int, dict[DeviceKey, float]] = {
        i: {k: 0.0 for k in _sensors(ctx) if there(k, i)} for i in windows}
    for bucket, key, value in rows:
        if there(key, bucket):
            found[bucket][key] = max(found[bucket].get(key, 0.0), value)
    return windows, found, since


# Per started bucket and counted sensor, (part, whole): the KPI is 100 x the sum of the parts
# over the sum of the wholes, and a sensor's own value 100 x its part over its whole.
Shares = dict[int, dict[DeviceKey, tuple[float, float]]]


async def availability_shares(ctx: Context) -> Shares:
    """Each sensor's share of its slots with data (the KPI: their mean)."""
    windows, found, since = await _per_sensor(ctx, slots=True)
    return {i: {k: (min(1.0, n / _slots_from(windows[i], since.get(k), _slot_s(ctx, k))), 1.0)
                for k, n in sensors.items()} for i, sensors in found.items()}


async def completeness_shares(ctx: Context) -> Shares:
    """Each sensor's readings (at most those expected) and readings expected."""
    windows, found, since = await _per_sensor(ctx, slots=False)
    out: Shares = {}
    for i, sensors in found.items():
        lo, hi = windows[i]
        out[i] = {}
        for k, n in sensors.items():
            expected = _expected(max(lo, since.get(k, lo)), hi, ctx.interval_s(k))
            out[i][k] = (min(n, expected), expected)
    return out


def pooled(ctx: Context, b: Bucket, sensors: dict[DeviceKey, tuple[float, float]] | None
           ) -> KpiValue:
    """The KPI of the sensors of one bucket from their shares (None: not started)."""
    if sensors is None:
        return ctx.value(b, None, _NOT_STARTED)
    if not sensors:
        return ctx.value(b, None, _NO_SENSORS)
    parts, wholes = zip(*sensors.values(), strict=True)
    return ctx.value(b, 100.0 * sum(parts) / sum(wholes), sensors=len(sensors))


async def availability(ctx: Context) -> list[KpiValue]:
    shares = await availability_shares(ctx)
    return [pooled(ctx, b, shares.get(b.index)) for b in ctx.buckets]


async def data_completeness(ctx: Context) -> list[KpiValue]:
    shares = await completeness_shares(ctx)
    return [pooled(ctx, b, shares.get(b.index)) for b in ctx.buckets]


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
                             missing=N_("no {name} readings in the period"),
                             nothing=N_("no readings or events in the period"))


KPIS = {f.__name__: f for f in (devices_deployed, devices_online, availability,
                                data_completeness, rejection_rate, ingest_delay_p95)}
