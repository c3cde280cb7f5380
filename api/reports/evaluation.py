"""The content of the pilot evaluation report: what each section says, as data.

Every figure is a value of `api.kpis.service.compute_many` — the computation behind
`GET /api/v1/kpis/{id}` — for the pilot and the period (grain `period`: the whole period as
one bucket), for the baseline period, or per week; the registry gives targets, baselines,
uptake and activities; `judgement.py` the few rules on top. Nothing here computes a KPI.
The one figure read from the store directly is the split of the pilot's dead letters by
reason, whose total is the `rejected` count the `rejection_rate` KPI reports.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from api.catalog import Activity, Pilot, Target, Uptake
from api.fleet import DeviceView, Fleet
from api.kpis.context import Dims
from api.kpis.definitions import BY_ID, KPIS, Family, Kpi, Limit
from api.kpis.periods import NS, Grain, from_ns
from api.kpis.service import KpiResult, compute_many, timezone_of
from api.options import KpiOptions
from api.reports import judgement
from api.reports.judgement import Corner, Mark
from api.texts import N_, Msg
from ingest.model import DEAD_LETTER_MEASUREMENT
from ingest.stores.base import Aggregate, Reader, Stat

log = logging.getLogger(__name__)

# The headline KPIs of each family in the summary (with every KPI that has a target).
HEADLINE: dict[Family, tuple[str, ...]] = {
    Family.PULL: ("usage_events", "active_users_daily", "returning_user_rate"),
    Family.PUSH: ("availability", "data_completeness", "devices_online"),
    Family.OUTCOME: ("no2_mean", "pm25_mean", "noise_lden", "lighting_energy_saving"),
}
WEEKLY = ("usage_events", "usage_per_device", "availability")
LIMITED = tuple(k.id for k in KPIS if k.limits)


@dataclass(frozen=True, slots=True)
class Figure:
    """One KPI value of the report, as the KPI API answers it."""

    kpi: Kpi
    dims: Dims
    value: float | None
    reason: str | None
    context: tuple[tuple[str, float], ...] = ()

    @property
    def where(self) -> str:
        """The dimensions in words: `parking`, `g1/aq1`, ..."""
        d = dict(self.dims)
        station = "/".join(d[k] for k in ("gateway", "device") if k in d)
        rest = [d[k] for k in ("service", "kind", "indicator", "regime") if k in d]
        return " · ".join([*rest, station] if station else rest)


@dataclass(frozen=True, slots=True)
class Comparison:
    """A row of the with-and-without table (and of the summary)."""

    figure: Figure
    target: Target | None
    mark: Mark
    baseline: float | None
    baseline_from: str  # "registry", "store" or ""
    baseline_note: str  # the registry's source and date, or the baseline period (a `Msg`)
    change: float | None
    change_pct: float | None
    completeness: float | None
    beyond_missing: bool | None


@dataclass(frozen=True, slots=True)
class Week:
    start: int
    end: int
    uses: float | None
    per_device: float | None
    availability: float | None
    corner: Corner


@dataclass(frozen=True, slots=True)
class ServiceUse:
    service: str
    uses: Figure
    per_device: Figure | None
    peak: Figure | None
    corner: Corner
    weeks: tuple[Week, ...]


@dataclass(frozen=True, slots=True)
class LimitCheck:
    figure: Figure
    limit: Limit
    within: bool | None  # None: no value
    indicative: bool  # an annual limit judged over a period that is not a calendar year


@dataclass(frozen=True, slots=True)
class Evaluation:
    pilot: Pilot
    registered: bool
    timezone: ZoneInfo
    start: int
    end: int
    baseline_period: tuple[int, int] | None
    now: int
    works_at: float
    summary: dict[Family, list[Comparison]]
    comparisons: list[Comparison]
    availability: Figure
    services: list[ServiceUse]
    limits: list[LimitCheck]
    allowances: list[Figure]
    devices: list[DeviceView]
    deployment: list[Figure]
    by_kind_gateway: list[tuple[str, str, int]]
    uptake: tuple[Uptake, ...]
    activities: tuple[Activity, ...]
    activity_totals: list[tuple[str, str, int, int]]  # actor, type, activities, participants
    definitions: tuple[Kpi, ...]
    dead_letters: list[tuple[str, int]]
    missing: list[Msg]
    results: list[KpiResult] = field(repr=False)

    @property
    def days(self) -> float:
        return (self.end - self.start) / (86400 * NS)


def _figures(results: Sequence[KpiResult]) -> dict[tuple[str, Dims], Figure]:
    return {(r.kpi.id, v.dims): Figure(r.kpi, v.dims, v.value, v.reason, v.extra)
            for r in results for v in r.values}


def _one(figures: dict[tuple[str, Dims], Figure], kpi_id: str) -> Figure:
    return figures[(kpi_id, ())]


def _completeness(figures: dict[tuple[str, Dims], Figure]) -> float | None:
    return _one(figures, "data_completeness").value


def _comparisons(pilot: Pilot, now: dict[tuple[str, Dims], Figure],
                 before: dict[tuple[str, Dims], Figure] | None, baseline_note: str
                 ) -> list[Comparison]:
    complete = _completeness(now)
    complete_b = _completeness(before) if before is not None else None
    out: list[Comparison] = []
    for key, fig in now.items():
        target = pilot.targets.get(fig.kpi.id)
        registry = pilot.baselines.get(fig.kpi.id)
        stored = before.get(key) if before is not None else None
        base: float | None
        base_complete: float | None
        note: str
        if registry is not None:
            base, origin = registry.value, N_("registry")
            note, base_complete = f"{registry.source}, {registry.date.isoformat()}", 100.0
        elif stored is not None and stored.value is not None:
            base, origin, note, base_complete = stored.value, N_("store"), baseline_note, \
                complete_b
        else:
            base, origin, note, base_complete = None, "", "", None
        diff, pct = judgement.change(fig.value, base)
        out.append(Comparison(fig, target, judgement.mark(fig.value, target), base, origin,
                              note, diff, pct, complete,
                              judgement.beyond_missing(fig.value, base, complete,
                                                       base_complete)))
    return out


def _summary(pilot: Pilot, rows: list[Comparison]) -> dict[Family, list[Comparison]]:
    out: dict[Family, list[Comparison]] = {f: [] for f in Family}
    for row in rows:
        kpi = row.figure.kpi
        if kpi.id in HEADLINE[kpi.family] or kpi.id in pilot.targets:
            out[kpi.family].append(row)
    return out


def _services(now: dict[tuple[str, Dims], Figure], weekly: Sequence[KpiResult],
              works_at: float, days: float) -> list[ServiceUse]:
    availability = _one(now, "availability").value
    per_week = {(r.kpi.id, v.start, dict(v.dims).get("service", "")): v.value
                for r in weekly for v in r.values}
    starts = sorted({(v.start, v.end) for r in weekly for v in r.values})
    out: list[ServiceUse] = []
    for (kpi_id, dims), fig in now.items():
        if kpi_id != "usage_events" or not dims:
            continue
        service = dict(dims)["service"]
        per_device = now.get(("usage_per_device", dims))
        weeks = []
        for lo, hi in starts:
            uses_d = per_week.get(("usage_per_device", lo, service))
            avail = per_week.get(("availability", lo, ""))
            weeks.append(Week(lo, hi, per_week.get(("usage_events", lo, service)), uses_d,
                              avail, judgement.corner(avail, uses_d, (hi - lo) / (86400 * NS),
                                                      works_at)))
        out.append(ServiceUse(
            service, fig, per_device, now.get(("peak_demand_ratio", dims)),
            judgement.corner(availability, per_device.value if per_device else None, days,
                             works_at), tuple(weeks)))
    return out


def _calendar_year(start: int, end: int, tz: ZoneInfo) -> bool:
    lo, hi = from_ns(start, tz), from_ns(end, tz)
    return (lo.month, lo.day, lo.hour, hi.month, hi.day, hi.hour) == (1, 1, 0, 1, 1, 0) \
        and hi.year == lo.year + 1


def _limits(now: dict[tuple[str, Dims], Figure], calendar_year: bool) -> list[LimitCheck]:
    out: list[LimitCheck] = []
    for (kpi_id, _), fig in now.items():
        if kpi_id not in LIMITED:
            continue
        for limit in fig.kpi.limits:
            bound = float(limit.allowed) if limit.allowed is not None else limit.value
            within = None if fig.value is None else fig.value <= bound
            annual = limit.allowed is not None or "year" in limit.averaging
            out.append(LimitCheck(fig, limit, within, annual and not calendar_year))
    return out


async def _dead_letters(store: Reader, pilot: Pilot, start: int, end: int
                        ) -> list[tuple[str, int]]:
    rows = await store.aggregate(Aggregate(
        (DEAD_LETTER_MEASUREMENT,), "topic", Stat.COUNT, ((start, end),), by=("reason",),
        prefix=f"citypilot/v1/{pilot.id}/"))  # the rejection_rate KPI's selection
    counts: Counter[str] = Counter()
    for r in rows:
        counts[r.tag("reason")] += int(r.value)
    return sorted(counts.items(), key=lambda x: (-x[1], x[0]))


def _activity_totals(activities: tuple[Activity, ...]) -> list[tuple[str, str, int, int]]:
    totals: dict[tuple[str, str], list[int]] = {}
    for a in activities:
        acc = totals.setdefault((a.actor.value, a.type.value), [0, 0])
        acc[0] += 1
        acc[1] += a.participants
    return [(actor, kind, n, people) for (actor, kind), (n, people) in sorted(totals.items())]


def _missing(ev_pilot: Pilot, registered: bool, now: dict[tuple[str, Dims], Figure],
             baseline: bool, end: int, now_ns: int, uses: bool) -> list[Msg]:
    out: list[Msg] = []
    if not registered:
        out.append(Msg("the pilot is not in the registry: no devices, services, targets or "
                       "baselines are known beyond what it sent"))
    if end > now_ns:
        out.append(Msg("the period is still in progress: figures cover it up to the time of "
                       "the report"))
    if not ev_pilot.targets:
        out.append(Msg("no targets are registered: no KPI can be marked met or not met"))
    if not ev_pilot.baselines and not baseline:
        out.append(Msg("no baselines are registered and no baseline period was given: the "
                       "with-and-without table has no baseline"))
    if not uses:
        out.append(Msg("no uses of any service were received in the period"))
    empty = sorted({f.kpi.id for f in now.values() if f.value is None})
    if empty:
        out.append(Msg("{empty} of {all} KPIs have no value for the period (the reason is "
                       "given with each)", empty=len(empty), all=len(KPIS)))
    return out


async def build(store: Reader, fleet: Fleet, pilot: Pilot, start: int, end: int,
                baseline: tuple[int, int] | None = None, *, options: KpiOptions | None = None,
                now_ns: int, progress: Callable[[str], None] | None = None) -> Evaluation:
    """The evaluation of `pilot` over [start, end), against `baseline` when given."""
    ids = [k.id for k in KPIS]
    tz = timezone_of(pilot)

    def step(what: str) -> Callable[[Kpi], None]:
        return lambda kpi: progress(f"{what}: {kpi.id}") if progress else None

    results = await compute_many(store, pilot, ids, start, end, Grain.PERIOD,
                                 options=options, now_ns=now_ns, progress=step("period"))
    now = _figures(results)
    before = None
    note = ""
    if baseline is not None:
        before = _figures(await compute_many(store, pilot, ids, *baseline, Grain.PERIOD,
                                             options=options, now_ns=now_ns,
                                             progress=step("baseline")))
        note = Msg("baseline period {start} to {end}",
                   start=from_ns(baseline[0], tz).date().isoformat(),
                   end=from_ns(baseline[1], tz).date().isoformat())
    weekly = await compute_many(store, pilot, WEEKLY, start, end, Grain.WEEK, options=options,
                                now_ns=now_ns, progress=step("weekly"))
    rows = _comparisons(pilot, now, before, note)
    target = pilot.targets.get("availability")
    works_at = target.value if target is not None else judgement.WORKS_AVAILABILITY
    days = (end - start) / (86400 * NS)
    devices = await fleet.devices([pilot.id])
    by_kind: Counter[tuple[str, str]] = Counter(
        ((d.entry.kind or d.entry.service or "—") if d.entry else
         (d.kinds[0] if d.kinds else "—"), d.gateway) for d in devices)
    registered = fleet.catalog.pilot(pilot.id) is not None
    services = _services(now, weekly, works_at, days)
    if progress:
        progress("dead letters")
    return Evaluation(
        pilot=pilot, registered=registered, timezone=tz, start=start, end=end,
        baseline_period=baseline, now=now_ns, works_at=works_at,
        summary=_summary(pilot, rows), comparisons=rows,
        availability=_one(now, "availability"), services=services,
        limits=_limits(now, _calendar_year(start, end, tz)),
        allowances=[f for (k, _), f in now.items() if k == "exceedances_left"],
        devices=devices,
        deployment=[_one(now, k) for k in ("devices_deployed", "devices_online",
                                           "availability", "data_completeness")],
        by_kind_gateway=[(k, g, n) for (k, g), n in sorted(by_kind.items())],
        uptake=pilot.uptake, activities=pilot.activities,
        activity_totals=_activity_totals(pilot.activities),
        definitions=tuple(BY_ID[i] for i in ids),
        dead_letters=await _dead_letters(store, pilot, start, end),
        missing=_missing(pilot, registered, now, baseline is not None, end, now_ns,
                         any(s.uses.value for s in services)),
        results=results)
