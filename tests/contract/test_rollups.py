"""Rollups are exact: every KPI read through them equals the same KPI from raw points.

On both stores, with the hand-built pilot of `test_kpis.py`, after each kind of late write a
real installation sees: a gateway's spool replayed days later, a redelivered batch, a
backfill of weeks, a dead letter replayed; and with two workers at once. The worker runs as
`citypilot rollup --once` does (one pass), the readers are the API's.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pytest

from api.catalog import Pilot
from api.kpis.catalog import KPIS
from api.kpis.periods import Grain
from api.kpis.rollups.reader import Horizon, RollupReader
from api.kpis.rollups.summary import SERIES_TAGS
from api.kpis.rollups.worker import Worker
from api.kpis.service import compute
from ingest.stores import open_reader, open_store
from ingest.stores.base import DIRTY_MEASUREMENT, Aggregate, Reader, Stat, Store
from ingest.stores.naming import rollup_url
from tests.contract.test_kpis import (
    BERLIN,
    GROWING,
    PILOT,
    D,
    H,
    M,
    T,
    event,
    growing,
    reading,
    seed,
)

# The KPIs that read raw points by design (a percentile, dead letters by topic prefix, last
# seen within two intervals of a period's end); every other one must answer from rollups.
RAW_BY_DESIGN = {"ingest_delay_p95", "rejection_rate", "devices_online"}
NOW = T + 60 * D


@dataclass
class Rig:
    store: Store
    raw: Reader
    worker: Worker
    rolled: RollupReader

    async def settle(self) -> None:
        """One worker pass over everything marked (`citypilot rollup --once`)."""
        await self.worker.run_once()


def zone(pilot: str) -> ZoneInfo:
    return BERLIN if pilot in (PILOT.id, GROWING.id) else ZoneInfo("UTC")


@pytest.fixture
async def rig(backend_url: str) -> AsyncIterator[Rig]:
    url = rollup_url(backend_url)
    async with open_store(backend_url) as store, open_reader(backend_url) as raw, \
            open_store(url, mark_dirty=False) as out, open_reader(url) as rollups:
        assert await store.write(seed()) == []
        yield Rig(store, raw, Worker(raw, out, rollups, zone),
                  RollupReader(raw, rollups, zone, Horizon(rollups, ttl_s=0.0)))


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


async def assert_same_kpis(rig: Rig, pilot: Pilot = PILOT) -> None:
    """Every KPI, at day, week and month grain, from rollups equals the KPI from raw."""
    failures: list[str] = []
    periods = [(T - 14 * D, T + 3 * D, Grain.DAY), (T - 14 * D, T + 14 * D, Grain.WEEK),
               (T - 30 * D, T + 40 * D, Grain.MONTH)]
    for start, end, grain in periods:
        for kpi in KPIS:
            raw = await compute(rig.raw, pilot, kpi.id, start, end, grain, now_ns=NOW)
            rolled = await compute(rig.rolled, pilot, kpi.id, start, end, grain, now_ns=NOW)
            got = [(v.start, v.dims, v.value, v.reason) for v in rolled.values]
            want = [(v.start, v.dims, v.value, v.reason) for v in raw.values]
            if len(got) != len(want) or not all(
                    g[:2] == w[:2] and g[3] == w[3] and close(g[2], w[2])
                    for g, w in zip(got, want, strict=True)):
                failures.append(f"{kpi.id} {grain}: rollups {got} != raw {want}")
            if (rolled.source == "rollup") != (kpi.id not in RAW_BY_DESIGN):
                failures.append(f"{kpi.id} {grain}: answered from {rolled.source}")
    assert not failures, "\n".join(failures)


async def test_rollups_equal_raw_after_the_first_pass(rig: Rig) -> None:
    done = await rig.worker.run_once()
    assert done.slots > 0 and done.days > 0
    await assert_same_kpis(rig)


async def test_a_spool_replayed_days_later_and_a_redelivered_batch(rig: Rig) -> None:
    await rig.settle()
    # Three days later a gateway's spool delivers day 0's missing readings and uses.
    late = [reading("air_quality", "aq1", T + 5 * H + 30 * M, 2.0, no2=900.0, pm10=90.0,
                    pm25=70.0),
            reading("noise", "nz1", T + 21 * H, 4.0, noise_laeq=80.0),
            reading("parking", "pk2", T + 2 * H + 10 * M, 2.0, occupancy=0.9),
            event(T + 15 * H, "u9", "parking", "session_start", "term2"),
            event(T + D + 9 * H, "u1", "kiosk", "use", "kiosk1")]
    assert await rig.store.write(late) == []
    await rig.settle()
    await assert_same_kpis(rig)
    # The broker delivers the same batch again: nothing changes.
    assert await rig.store.write(late) == []
    await rig.settle()
    await assert_same_kpis(rig)


async def test_a_backfill_of_weeks_and_a_replayed_dead_letter(rig: Rig) -> None:
    await rig.settle()
    history = [reading("air_quality", "aq1", T - d * D + h * H, 1.0, no2=40.0 + d + h,
                       pm10=20.0 + h, pm25=8.0 + d) for d in range(1, 29) for h in (3, 9, 15)]
    history += [event(T - d * D + 10 * H, f"u{d % 5}", "parking", "use", "term1")
                for d in range(1, 29)]
    assert await rig.store.write(history) == []
    # `deadletters replay`: a fixed reading stored long after it was refused.
    assert await rig.store.write([reading("noise", "nz1", T + D + 20 * H, 9.0,
                                          noise_laeq=61.0)]) == []
    await rig.settle()
    await assert_same_kpis(rig)


async def test_sensors_installed_mid_period_by_date_and_by_first_reading(rig: Rig) -> None:
    assert await rig.store.write(growing()) == []
    await rig.settle()
    await assert_same_kpis(rig, GROWING)
    # Found later: `heard` had reported on Monday already (its first reading moves back), and
    # `late` sent its first reading on Sunday.
    assert await rig.store.write([
        reading("air_quality", "heard", T + 7 * H + 50 * M, 1.0, pilot="p3", no2=1.0),
        reading("noise", "late", T + 6 * D + 9 * H + 5 * M, 1.0, pilot="p3",
                noise_laeq=50.0)]) == []
    await rig.settle()
    await assert_same_kpis(rig, GROWING)
    # The rollups answer when sensors were first seen, to the hour.
    scoped = rig.rolled.scoped()
    first = await scoped.first_seen(["air_quality", "noise"], "ingest_delay_s", end=NOW,
                                    where=(("pilot", ("p3",)),))
    assert scoped.sources == {"rollup"} and [(s.device, s.ts) for s in first] == [
        ("dated", T + 3 * D + 12 * H), ("heard", T + 7 * H), ("late", T + 6 * D + 9 * H)]


async def test_two_workers_at_once_agree_with_one(rig: Rig, backend_url: str) -> None:
    url = rollup_url(backend_url)
    async with open_store(url, mark_dirty=False) as out, open_reader(url) as rollups:
        other = Worker(rig.raw, out, rollups, zone)
        await asyncio.gather(rig.settle(), other.run_once())
    await assert_same_kpis(rig)


async def test_nothing_rolled_up_reads_raw(rig: Rig) -> None:
    result = await compute(rig.rolled, PILOT, "usage_events", T, T + 2 * D, Grain.DAY,
                           now_ns=NOW)
    assert result.source == "raw" and result.values


async def rollup_rows(reader: Reader) -> dict[tuple[str, str], list[tuple[object, ...]]]:
    """Every numeric rollup field, per hour and series: what a rebuild must reproduce."""
    out: dict[tuple[str, str], list[tuple[object, ...]]] = {}
    for measurement, names in (await reader.fields()).items():
        for name in names if measurement != DIRTY_MEASUREMENT else ():  # writers' marks
            rows = await reader.aggregate(Aggregate(
                (measurement,), name, Stat.SUM, ((T - 40 * D, T + 40 * D),),
                by=SERIES_TAGS, every_s=3600.0))
            out[(measurement, name)] = sorted((r.start, r.tags, round(r.value, 6))
                                              for r in rows)
    return out


async def test_a_rebuild_reproduces_the_rollups(rig: Rig, backend_url: str) -> None:
    late = [reading("air_quality", "aq1", T + 5 * H + 30 * M, 2.0, no2=900.0, pm10=90.0,
                    pm25=70.0), event(T + 15 * H, "u9", "parking", "session_start", "term2")]
    await rig.settle()
    assert await rig.store.write(late) == []
    await rig.settle()
    url = rollup_url(backend_url).replace("_rollups", "_rebuilt")
    seen: list[tuple[str, int, int]] = []
    async with open_store(url, mark_dirty=False) as out, open_reader(url) as rebuilt:
        done = await Worker(rig.raw, out, rebuilt, zone).rebuild(
            None, None, lambda *step: seen.append(step))
        last = {pilot: (n, total) for pilot, n, total in seen}  # progress per pilot
        assert sorted(last) == ["p1", "p2"] and all(n == t for n, t in last.values())
        assert sum(t for _, t in last.values()) == done.slots > 0
        assert await rollup_rows(rebuilt) == await rollup_rows(rig.rolled.rollups)
        rig.rolled = RollupReader(rig.raw, rebuilt, zone, Horizon(rebuilt, ttl_s=0.0))
        await assert_same_kpis(rig)
