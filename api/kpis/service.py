"""Computing KPIs: validate a request, cut its period into buckets, run the KPI's function.

Used by the API routes, the exports and `citypilot kpi`. A KPI whose inputs are missing
answers null values with a reason; only a bad request (a period that ends before it starts,
too long, too many buckets) raises `KpiRequestError`, naming the offending parameters. With
a rollup reader that has a result cache, the answer for a period that ended before the
rollups' horizon and came wholly from rollups is kept until the worker recomputes one of
its hours (`rollups/cache.py`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from zoneinfo import ZoneInfo

from api.catalog import Pilot
from api.kpis import outcomes, pull, push
from api.kpis.context import Context, DeviceKey, KpiValue
from api.kpis.definitions import BY_ID, KPIS, Kpi
from api.kpis.periods import NS, Bucket, Grain, buckets
from api.kpis.rollups.cache import ResultCache
from api.kpis.rollups.reader import RollupReader
from api.options import KpiOptions
from ingest.stores.base import Reader

log = logging.getLogger(__name__)
# KPIs of one request computed at once: the store answers one while this process reads
# another's rows (a year's report content of 100 devices, cold: 11.8 s one by one, 7.9 s).
CONCURRENT_KPIS = 4

FUNCTIONS: dict[str, Callable[[Context], Awaitable[list[KpiValue]]]] = {
    **pull.KPIS, **push.KPIS, **outcomes.KPIS}
if set(FUNCTIONS) != set(BY_ID):  # defined once: a definition without code is a bug
    raise RuntimeError(f"KPI definitions and functions differ: {set(FUNCTIONS) ^ set(BY_ID)}")


class KpiRequestError(ValueError):
    """A request that cannot be answered as asked; `fields` names the parameters."""

    def __init__(self, message: str, *fields: str) -> None:
        super().__init__(message)
        self.fields = fields


@dataclass(frozen=True, slots=True)
class KpiResult:
    kpi: Kpi
    pilot: str
    timezone: ZoneInfo
    grain: Grain
    values: list[KpiValue]
    source: Literal["rollup", "raw"] = "raw"  # "rollup": rollups answered all of the KPI


def check_period(start_ns: int, end_ns: int, grain: Grain, tz: ZoneInfo,
                 options: KpiOptions) -> None:
    if end_ns <= start_ns:
        raise KpiRequestError("`end` must be after `start`", "start", "end")
    if (end_ns - start_ns) / (86400 * NS) > options.max_days:
        raise KpiRequestError(f"the period is longer than {options.max_days:g} days: ask "
                              "for a shorter one", "start", "end")
    if len(buckets(start_ns, end_ns, grain, tz)) > options.max_buckets:
        raise KpiRequestError(f"more than {options.max_buckets} periods: use a coarser "
                              "grain", "grain")


def timezone_of(pilot: Pilot) -> ZoneInfo:
    return ZoneInfo(pilot.timezone)


async def compute(store: Reader, pilot: Pilot, kpi_id: str, start_ns: int, end_ns: int,
                  grain: Grain, *, options: KpiOptions | None = None,
                  now_ns: int | None = None) -> KpiResult:
    """The values of one KPI for one pilot, per bucket of `grain` in the pilot's zone."""
    [result] = await compute_many(store, pilot, [kpi_id], start_ns, end_ns, grain,
                                  options=options, now_ns=now_ns)
    return result


async def compute_many(store: Reader, pilot: Pilot, kpi_ids: Sequence[str], start_ns: int,
                       end_ns: int, grain: Grain, *, options: KpiOptions | None = None,
                       now_ns: int | None = None,
                       progress: Callable[[Kpi], None] | None = None) -> list[KpiResult]:
    unknown = [k for k in kpi_ids if k not in BY_ID]
    if unknown:
        raise KpiRequestError(f"unknown KPI {unknown[0]!r}; see the KPI list", "id")
    options = options or KpiOptions()
    tz = timezone_of(pilot)
    check_period(start_ns, end_ns, grain, tz, options)
    now = time.time_ns() if now_ns is None else now_ns
    cache = await _finished_cache(store, end_ns, now)
    # Read once for all the KPIs asked, unless most may come from the cache.
    measurements = await store.measurements() if cache is None else None
    ctx = Context(store, pilot, tz, buckets(start_ns, end_ns, grain, tz), now,
                  options.default_interval_s, _measurements=measurements)
    # The registry entry is part of the key (a change to it changes answers); as its JSON,
    # since an entry with targets or baselines holds dicts, which do not hash.
    entry = pilot.model_dump_json() if cache is not None else ""
    gate = asyncio.Semaphore(CONCURRENT_KPIS)

    async def one(kpi_id: str) -> KpiResult:
        key = (kpi_id, entry, start_ns, end_ns, grain, options.default_interval_s)
        result = cache.get(key) if cache is not None else None
        if result is None:
            generation = cache.generation if cache is not None else 0
            async with gate:
                result = await _compute_one(store, ctx, kpi_id, grain)
            if cache is not None and result.source == "rollup":
                cache.put(key, pilot.id, (start_ns, end_ns), result, generation)
        if progress is not None:
            progress(BY_ID[kpi_id])
        return result
    return list(await asyncio.gather(*(one(k) for k in kpi_ids)))


async def _finished_cache(store: Reader, end_ns: int, now_ns: int) -> ResultCache | None:
    """The store's result cache, brought up to the worker's newest pass, when the period
    ended before the rollups' horizon (and before now); else None."""
    if not isinstance(store, RollupReader) or store.cache is None:
        return None
    state = await store.horizon.state()
    await store.cache.refresh(state.passed_at if state is not None else None)
    horizon = await store.horizon.until()
    finished = horizon is not None and end_ns <= min(horizon, now_ns)
    return store.cache if finished else None


async def _compute_one(store: Reader, ctx: Context, kpi_id: str, grain: Grain) -> KpiResult:
    began = time.perf_counter()
    # A reader of its own per KPI, to tell whether rollups answered all of it.
    reader = store.scoped() if isinstance(store, RollupReader) else store
    values = await FUNCTIONS[kpi_id](replace(ctx, store=reader))
    source: Literal["rollup", "raw"] = \
        "rollup" if getattr(reader, "sources", None) == {"rollup"} else "raw"
    log.debug("kpi computed id=%s pilot=%s buckets=%d duration_s=%.3f", kpi_id, ctx.pilot.id,
              len(ctx.buckets), time.perf_counter() - began)
    return KpiResult(BY_ID[kpi_id], ctx.pilot.id, ctx.tz, grain, values, source)


# The KPIs that have a value per sensor: their functions' shares of each sensor.
SHARES: dict[str, Callable[[Context], Awaitable[push.Shares]]] = {
    "availability": push.availability_shares, "data_completeness": push.completeness_shares}


async def per_device(store: Reader, pilot: Pilot, kpi_ids: Sequence[str],
                     devices: Sequence[DeviceKey], start_ns: int, end_ns: int, *,
                     options: KpiOptions | None = None, now_ns: int | None = None,
                     ) -> dict[DeviceKey, dict[str, KpiValue]]:
    """Each KPI over [start, end) as one period, for each device alone (the inventory's
    availability and completeness): the KPI's own code, run once over the pilot, gives each
    sensor's share, and a device's value is its share as the KPI would pool it over that one
    sensor (a device that reports nothing and is no registered sensor: null, "no sensors").
    One pass whatever the number of devices (it was the KPI run per device: 7 s for a
    thousand devices over 30 days)."""
    options = options or KpiOptions()
    unknown = [k for k in kpi_ids if k not in SHARES]
    if unknown:
        raise KpiRequestError(f"KPI {unknown[0]!r} has no per-device value; those that have: "
                              f"{', '.join(SHARES)}", "id")
    tz, now = timezone_of(pilot), time.time_ns() if now_ns is None else now_ns
    measurements = await store.measurements()
    bucket = Bucket(0, start_ns, end_ns)

    async def shares(kpi_id: str) -> tuple[Context, push.Shares]:
        reader = store.scoped() if isinstance(store, RollupReader) else store
        ctx = Context(reader, pilot, tz, [bucket], now, options.default_interval_s,
                      _measurements=measurements)
        return ctx, await SHARES[kpi_id](ctx)

    answers = dict(zip(kpi_ids, await asyncio.gather(*(shares(k) for k in kpi_ids)),
                       strict=True))

    def one(ctx: Context, got: push.Shares, key: DeviceKey) -> KpiValue:
        sensors = got.get(0)
        return push.pooled(ctx, bucket, None if sensors is None else (
            {key: sensors[key]} if key in sensors else {}))

    return {key: {k: one(*answers[k], key) for k in kpi_ids} for key in devices}


__all__ = ["KPIS", "Grain", "KpiOptions", "KpiRequestError", "KpiResult", "compute",
           "compute_many", "per_device"]
