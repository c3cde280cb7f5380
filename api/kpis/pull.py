"""End-user pull: is the deployed technology used? (Definitions in `definitions.py`.)

A use is an event of type `session_start` or `use`. Counting and distinct counting run in
the store. Weekly users and the returning-user rate need unions and intersections of user
sets over overlapping windows (a week ending on each day), which neither query language
offers: the store answers the distinct users of each non-overlapping piece once
(`periods.pieces`), and the sets are combined here.
Weekly figures use the 7 local days ending at the end of each period, so they are defined for
every grain and do not depend on where a week starts.
"""

from __future__ import annotations

from collections import defaultdict

from api.kpis.context import Context, KpiValue
from api.kpis.definitions import USE_TYPES
from api.kpis.periods import days_before, pieces
from api.texts import N_
from ingest.model import EVENT_MEASUREMENT
from ingest.stores.base import Aggregate, Distinct, Rollup, Stat, TagFilter, Window

USES: TagFilter = (("type", USE_TYPES),)
_NO_SERVICES = N_("no services registered and no uses in the period")


def _weeks(ctx: Context, shift_days: int = 0) -> list[Window]:
    """Per bucket: the 7 local days ending `shift_days` days before its end."""
    out: list[Window] = []
    for b in ctx.buckets:
        hi = days_before(b.hi, shift_days, ctx.tz)
        out.append((days_before(hi, 7, ctx.tz), hi))
    return out


async def _uses(ctx: Context, windows: tuple[Window, ...], stat: Stat = Stat.COUNT,
                by: tuple[str, ...] = ("service",), inner: Rollup | None = None
                ) -> dict[tuple[int, str], float]:
    rows = await ctx.store.aggregate(Aggregate(
        (EVENT_MEASUREMENT,), "value", stat, windows, by=by, where=ctx.where + USES,
        inner=inner))
    return {(r.window, r.tag(by[0]) if by else ""): r.value for r in rows}


async def usage_events(ctx: Context) -> list[KpiValue]:
    table = await _uses(ctx, ctx.windows)
    return ctx.per_dimension("service", ctx.services(s for _, s in table), table, default=0.0,
                             missing="", nothing=_NO_SERVICES)


async def active_users_daily(ctx: Context) -> list[KpiValue]:
    day_windows = ctx.day_windows()
    rows = await ctx.store.aggregate(Aggregate(
        (EVENT_MEASUREMENT,), "user", Stat.COUNT_DISTINCT,
        tuple((lo, hi) for _, lo, hi in day_windows), where=ctx.where + USES))
    per_day = {r.window: r.value for r in rows}
    sums: dict[int, float] = defaultdict(float)
    counts: dict[int, int] = defaultdict(int)
    for i, (bucket, _, _) in enumerate(day_windows):
        sums[bucket] += per_day.get(i, 0.0)
        counts[bucket] += 1
    if not rows and not ctx.services():
        return [ctx.value(b, None, _NO_SERVICES) for b in ctx.buckets]
    return [ctx.value(b, sums[b.index] / counts[b.index], days=counts[b.index])
            for b in ctx.buckets]


async def _users(ctx: Context, windows: list[Window]) -> list[set[str]]:
    """The users of each window: distinct values per piece from the store, united here (a
    distinct count does not add up over overlapping windows; sets do)."""
    parts, members = pieces(windows)
    sets = await ctx.store.distinct(Distinct(EVENT_MEASUREMENT, "user", tuple(parts),
                                             where=ctx.where + USES))
    return [set().union(*(sets[i] for i in member)) for member in members]


async def active_users_weekly(ctx: Context) -> list[KpiValue]:
    users = await _users(ctx, _weeks(ctx))
    if not any(users) and not ctx.services():
        return [ctx.value(b, None, _NO_SERVICES) for b in ctx.buckets]
    return [ctx.value(b, float(len(users[b.index]))) for b in ctx.buckets]


async def returning_user_rate(ctx: Context) -> list[KpiValue]:
    windows: list[Window] = []
    for lo, hi in _weeks(ctx):
        windows += [(lo, hi), (days_before(lo, 28, ctx.tz), lo)]
    users = await _users(ctx, windows)
    out: list[KpiValue] = []
    for b in ctx.buckets:
        week, before = users[2 * b.index], users[2 * b.index + 1]
        if not week:
            out.append(ctx.value(b, None, N_("no uses in the 7 days ending at the period's end")))
        else:
            out.append(ctx.value(b, 100.0 * len(week & before) / len(week), users=len(week)))
    return out


async def usage_growth_wow(ctx: Context) -> list[KpiValue]:
    windows: list[Window] = []
    for this, before in zip(_weeks(ctx), _weeks(ctx, shift_days=7), strict=True):
        windows += [this, before]
    parts, members = pieces(windows)
    per_part = await _uses(ctx, tuple(parts))
    table: dict[tuple[int, str], float] = defaultdict(float)
    for (part, service), n in per_part.items():
        for w, member in enumerate(members):
            if part in member:
                table[(w, service)] += n
    growth: dict[tuple[int, str], float] = {}
    for b in ctx.buckets:
        for service in ctx.services(s for _, s in table):
            now, then = table.get((2 * b.index, service), 0.0), table.get((2 * b.index + 1,
                                                                             service), 0.0)
            if then:
                growth[(b.index, service)] = 100.0 * (now - then) / then
    return ctx.per_dimension("service", ctx.services(s for _, s in table), growth,
                             default=None, missing=N_("no uses of {name} in the week before"),
                             nothing=_NO_SERVICES)


async def utilisation(ctx: Context) -> list[KpiValue]:
    kinds = await ctx.telemetry()
    rows = [] if not kinds else await ctx.store.aggregate(Aggregate(
        kinds, "occupancy", Stat.MEAN, ctx.windows, by=("gateway", "device"), where=ctx.where,
        inner=Rollup(Stat.MEAN, 3600.0)))
    weighted: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for r in rows:
        acc = weighted[(r.window, r.measurement)]
        acc[2] += 1  # sensors with data, with or without a registered capacity
        device = ctx.devices.get((r.tag("gateway"), r.tag("device")))
        if device is not None and device.capacity:
            acc[0] += device.capacity * r.value
            acc[1] += device.capacity
    table = {key: 100.0 * acc[0] / acc[1] for key, acc in weighted.items() if acc[1]}
    names = sorted({m for _, m in weighted})
    return ctx.per_dimension("kind", names, table, default=None,
                             missing=N_("no occupancy readings of {name} sensors with a "
                                        "registered capacity in the period"),
                             nothing=N_("no occupancy readings in the period"))


async def peak_demand_ratio(ctx: Context) -> list[KpiValue]:
    peaks = await _uses(ctx, ctx.windows, Stat.MAX, inner=Rollup(Stat.COUNT, 3600.0))
    services = ctx.services(s for _, s in peaks)
    capacity = {s.id: s.capacity for s in ctx.pilot.services if s.capacity}
    for d in ctx.pilot.devices:  # a service without its own capacity: its devices' sum
        if d.service and d.capacity and d.service not in {s.id for s in ctx.pilot.services
                                                          if s.capacity}:
            capacity[d.service] = capacity.get(d.service, 0.0) + d.capacity
    table = {(b.index, s): peaks.get((b.index, s), 0.0) / capacity[s]
             for b in ctx.buckets for s in services if s in capacity}
    return ctx.per_dimension("service", services, table, default=None,
                             missing=N_("no capacity registered for service {name}"),
                             nothing=_NO_SERVICES)


async def usage_per_device(ctx: Context) -> list[KpiValue]:
    rows = await ctx.store.aggregate(Aggregate(
        (EVENT_MEASUREMENT,), "value", Stat.COUNT, ctx.windows,
        by=("service", "gateway", "device"), where=ctx.where + USES))
    uses: dict[tuple[int, str], float] = defaultdict(float)
    devices: dict[tuple[int, str], set[tuple[str, str]]] = defaultdict(set)
    for r in rows:
        uses[(r.window, r.tag("service"))] += r.value
        devices[(r.window, r.tag("service"))].add((r.tag("gateway"), r.tag("device")))
    services = ctx.services(s for _, s in uses)
    table: dict[tuple[int, str], float] = {}
    for b in ctx.buckets:
        for s in services:
            deployed = devices[(b.index, s)] | {(d.gateway, d.id) for d in ctx.pilot.devices
                                                if d.service == s}
            if deployed:
                table[(b.index, s)] = uses[(b.index, s)] / len(deployed)
    return ctx.per_dimension("service", services, table, default=None,
                             missing=N_("no devices registered or used for service {name}"),
                             nothing=_NO_SERVICES)


KPIS = {f.__name__: f for f in (usage_events, active_users_daily, active_users_weekly,
                                returning_user_rate, usage_growth_wow, utilisation,
                                peak_demand_ratio, usage_per_device)}
