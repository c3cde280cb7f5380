"""The content of the cluster report: several pilots of one installation on the same KPIs.

Every figure is a value of `api.kpis.service.compute_many` (the KPI API's computation) for
each pilot over the same period, grain `period`. Pilots differ in size, so the figures that
count something of the whole pilot are also given per device (the pilot's `devices_deployed`)
and per 100,000 inhabitants (the registry's `population`). Only rows that mean the same in
every pilot are compared: the pilot as a whole, or one service or kind of it; figures per
station stay in each pilot's evaluation report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from api.catalog import Pilot
from api.kpis.context import Dims
from api.kpis.definitions import BY_ID, KPIS, Kpi
from api.kpis.periods import Grain
from api.kpis.service import KpiResult, compute_many, timezone_of
from api.options import KpiOptions
from api.texts import Msg
from ingest.stores.base import Reader

log = logging.getLogger(__name__)

PER_100K = ("usage_events", "active_users_daily", "active_users_weekly", "devices_deployed")
PER_DEVICE = ("active_users_daily", "active_users_weekly")  # uses per device: a KPI already
COMPARABLE = frozenset({"service", "kind"})  # dimensions that mean the same in every pilot
WHOLE = frozenset({"service"})  # dimensions of a count that divides by the pilot's size
PEOPLE = 100_000


@dataclass(frozen=True, slots=True)
class Cell:
    """One pilot's value of one row, as the KPI API answers it, and its quotients."""

    value: float | None
    reason: str | None
    per_device: float | None = None
    per_100k: float | None = None


@dataclass(frozen=True, slots=True)
class Row:
    kpi: Kpi
    dims: Dims
    cells: tuple[Cell, ...]  # one per pilot, in the cluster's order

    @property
    def where(self) -> str:
        return " · ".join(v for _, v in self.dims)

    @property
    def per(self) -> tuple[str, ...]:
        """The quotients this row has: "device", "100k"."""
        if not {k for k, _ in self.dims} <= WHOLE:
            return ()
        return tuple(name for name, ids in (("device", PER_DEVICE), ("100k", PER_100K))
                     if self.kpi.id in ids)


@dataclass(frozen=True, slots=True)
class Cluster:
    pilots: tuple[Pilot, ...]
    timezone: ZoneInfo  # the first pilot's: the period's dates are read in it
    start: int
    end: int
    now: int
    rows: list[Row]
    missing: list[Msg]
    results: list[KpiResult] = field(repr=False)

    @property
    def normalised(self) -> list[Row]:
        return [r for r in self.rows if r.per]


def _quotient(value: float | None, by: float | None, scale: float = 1.0) -> float | None:
    return None if value is None or not by else value * scale / by


def _rows(pilots: Sequence[Pilot], per_pilot: Sequence[list[KpiResult]]) -> list[Row]:
    found: list[dict[tuple[str, Dims], tuple[float | None, str | None]]] = [
        {(r.kpi.id, v.dims): (v.value, v.reason) for r in results for v in r.values
         if {k for k, _ in v.dims} <= COMPARABLE} for results in per_pilot]
    devices = [f.get(("devices_deployed", ()), (None, None))[0] for f in found]
    keys = sorted({k for f in found for k in f},
                  key=lambda k: (KPIS.index(BY_ID[k[0]]), k[1]))
    rows: list[Row] = []
    for kpi_id, dims in keys:
        cells: list[Cell] = []
        row = Row(BY_ID[kpi_id], dims, ())
        for pilot, f, n in zip(pilots, found, devices, strict=True):
            if (kpi_id, dims) not in f:
                cells.append(Cell(None, Msg("not in this pilot")))
                continue
            value, reason = f[(kpi_id, dims)]
            cells.append(Cell(
                value, reason,
                _quotient(value, n) if "device" in row.per else None,
                _quotient(value, pilot.population, PEOPLE) if "100k" in row.per else None))
        rows.append(Row(row.kpi, dims, tuple(cells)))
    return rows


def _missing(pilots: Sequence[Pilot], known: Sequence[bool],
             per_pilot: Sequence[list[KpiResult]]) -> list[Msg]:
    out: list[Msg] = []
    for pilot, registered, results in zip(pilots, known, per_pilot, strict=True):
        if not registered:
            out.append(Msg("pilot {pilot} is not in the registry: it has no population and "
                           "no devices beyond what it sent", pilot=pilot.id))
        elif not pilot.population:
            out.append(Msg("pilot {pilot} has no population registered: no figures per "
                           "100,000 inhabitants", pilot=pilot.id))
        if not any(v.value for r in results for v in r.values if r.kpi.id in PER_100K):
            out.append(Msg("pilot {pilot} has no devices and no uses in the period",
                           pilot=pilot.id))
    return out


async def build(store: Reader, pilots: Sequence[tuple[Pilot, bool]], start: int, end: int,
                *, options: KpiOptions | None = None, now_ns: int,
                progress: Callable[[str], None] | None = None) -> Cluster:
    """The cluster of `pilots` (each with whether it is registered) over [start, end)."""
    ids = [k.id for k in KPIS]
    per_pilot: list[list[KpiResult]] = []
    for pilot, _ in pilots:
        def step(kpi: Kpi, pilot_id: str = pilot.id) -> None:
            if progress:
                progress(f"{pilot_id}: {kpi.id}")
        per_pilot.append(await compute_many(store, pilot, ids, start, end, Grain.PERIOD,
                                            options=options, now_ns=now_ns, progress=step))
    entries = tuple(p for p, _ in pilots)
    return Cluster(
        pilots=entries, timezone=timezone_of(entries[0]), start=start, end=end, now=now_ns,
        rows=_rows(entries, per_pilot),
        missing=_missing(entries, [r for _, r in pilots], per_pilot),
        results=[r for results in per_pilot for r in results])
