"""Rollups are exact: every KPI read through them equals the same KPI from raw points.

On both stores, with the hand-built pilot of `test_kpis.py`, after each kind of late write a
real installation sees: a gateway's spool replayed days later, a redelivered batch, a
backfill of weeks, a dead letter replayed; and with two workers at once. The worker runs as
`citypilot rollup --once` does (one pass), the readers are the API's. The one KPI that is not
exact by design, the ingest delay's percentile, must stay within the relative error its
formula states (`APPROXIMATE`), and a coarser histogram must be caught.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest

from api.catalog import Pilot
from api.kpis.definitions import KPIS
from api.kpis.periods import Grain, from_ns, midnight
from api.kpis.rollups import reader
from api.kpis.rollups.reader import Horizon, RollupReader
from api.kpis.rollups.summary import DAY_HIST_FIELD, HIST_FIELD, SERIES_TAGS, add_hist
from api.kpis.rollups.worker import State, Worker
from api.kpis.service import KpiResult, compute
from ingest.stores import open_reader, open_store
from ingest.stores.base import (
    DIRTY_MEASUREMENT,
    Aggregate,
    AggRow,
    Distinct,
    Reader,
    Rollup,
    Stat,
    Store,
    StoreUnavailable,
)
from ingest.stores.histogram import ACCURACY
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

# The KPIs that read raw points by design (dead letters by topic prefix); every other one
# must answer from rollups, but devices_online: its last-seen windows (two intervals before
# each period end) go through the rollups where they are whole hours before the horizon.
RAW_BY_DESIGN = {"rejection_rate"}
EITHER = {"devices_online"}
# The KPIs answered from rollups within a relative error (their formula says so); every
# other one exactly.
APPROXIMATE = {"ingest_delay_p95": ACCURACY}
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


def close(got: float | None, want: float | None, rel: float = 0.0) -> bool:
    if got is None or want is None:
        return got is want
    if rel:  # the stated bound, relative to the exact value (float rounding aside)
        return abs(got - want) <= rel * abs(want) * (1 + 1e-9) + 1e-12
    return math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


def difference(rolled: KpiResult, raw: KpiResult) -> str | None:
    """How the rollups' answer differs from raw's beyond what the KPI states; None: equal."""
    got = [(v.start, v.dims, v.value, v.reason) for v in rolled.values]
    want = [(v.start, v.dims, v.value, v.reason) for v in raw.values]
    rel = APPROXIMATE.get(raw.kpi.id, 0.0)
    if len(got) != len(want) or not all(
            g[:2] == w[:2] and g[3] == w[3] and close(g[2], w[2], rel)
            for g, w in zip(got, want, strict=True)):
        return f"{raw.kpi.id} {raw.grain}: rollups {got} != raw {want}"
    return None


async def assert_same_kpis(rig: Rig, pilot: Pilot = PILOT) -> None:
    """Every KPI, at day, week and month grain, from rollups equals the KPI from raw."""
    failures: list[str] = []
    periods = [(T - 14 * D, T + 3 * D, Grain.DAY), (T - 14 * D, T + 14 * D, Grain.WEEK),
               (T - 30 * D, T + 40 * D, Grain.MONTH)]
    for start, end, grain in periods:
        for kpi in KPIS:
            raw = await compute(rig.raw, pilot, kpi.id, start, end, grain, now_ns=NOW)
            rolled = await compute(rig.rolled, pilot, kpi.id, start, end, grain, now_ns=NOW)
            if (diff := difference(rolled, raw)) is not None:
                failures.append(diff)
            if kpi.id not in EITHER and (rolled.source == "rollup") != (
                    kpi.id not in RAW_BY_DESIGN):
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


async def test_rollups_up_to_a_horizon_inside_the_periods_and_raw_after_it(rig: Rig) -> None:
    # As while the worker catches up: rollups end in the middle of a day (and of the weeks
    # and months around it); the hours after the horizon are read raw, histograms included.
    await rig.settle()
    assert await rig.worker.out.write([State(T, T + D + 5 * H, T).point()]) == []
    await assert_same_kpis(rig)


async def test_rollups_of_an_older_layout_are_read_without_segment_sums_until_a_rebuild(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    # Rollups written before day points held segment sums (a state point without `layout`
    # reads as layout 1): readers use hour rollups for Lden's parts and for hours with data
    # (availability), the worker says a rebuild
    # is due (once) and keeps the layout until a rebuild of everything.
    await rig.settle()
    assert await rig.worker.out.write([State(T, NOW // H * H, T, layout=1).point()]) == []
    assert await rig.rolled.horizon.layout() == 1
    await assert_same_kpis(rig)
    await rig.settle()
    await rig.settle()
    assert [r.message for r in caplog.records if "--rebuild" in r.message] == [
        "rollups predate layout 2 (day sums that Lden and availability read): run `citypilot "
        "rollup --rebuild` once; until then those KPIs read hour rollups"]
    assert await rig.rolled.horizon.layout() == 1
    await rig.worker.rebuild(None, None, now_ns=NOW)
    assert await rig.rolled.horizon.layout() == 2
    await assert_same_kpis(rig)


async def test_a_coarser_histogram_than_stated_is_caught(rig: Rig) -> None:
    # The same comparison with 10 % buckets: the delay percentile leaves the stated 1 %.
    rig.worker.accuracy = rig.rolled.accuracy = 0.1
    await rig.settle()
    with pytest.raises(AssertionError) as failed:
        await assert_same_kpis(rig)
    wrong = {line.split()[0] for line in str(failed.value).splitlines() if " != raw " in line}
    assert wrong == {"ingest_delay_p95"}


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


async def test_day_rollups_hold_each_local_day_of_the_hours(rig: Rig) -> None:
    """A local day's point (at its Berlin midnight) holds what its hours hold, merged."""
    await rig.settle()
    days = tuple((midnight(day, BERLIN), midnight(day + timedelta(days=1), BERLIN))
                 for day in (from_ns(T, BERLIN).date() + timedelta(days=i) for i in range(-2, 3)))
    where = (("pilot", (PILOT.id,)),)
    for part, stat in (("count", Stat.SUM), ("sum", Stat.SUM), ("max", Stat.MAX)):
        from_days, from_hours = [await rig.rolled.rollups.aggregate(Aggregate(
            ("air_quality",), f"no2__{prefix}{part}", stat, days, by=SERIES_TAGS, where=where))
            for prefix in ("day_", "")]
        assert from_days and [(r.window, r.tags, r.value) for r in from_days] == [
            (r.window, r.tags, r.value) for r in from_hours]
    hmax = await rig.rolled.rollups.aggregate(Aggregate(
        ("air_quality",), "no2__day_hmax", Stat.MAX, days, by=SERIES_TAGS, where=where))
    hourly = await rig.raw.aggregate(Aggregate(
        ("air_quality",), "no2", Stat.MAX, days, by=("gateway", "device"), where=where,
        inner=Rollup(Stat.MEAN, 3600.0)))
    assert hmax and [(r.window, r.value) for r in hmax] == [(r.window, r.value) for r in hourly]
    # The day's delay histogram is the sum of its hours'.
    by_day, by_hour = [await rig.rolled.rollups.distinct(Distinct(
        "air_quality", field, days, where)) for field in (DAY_HIST_FIELD, HIST_FIELD)]
    for day_texts, hour_texts in zip(by_day, by_hour, strict=True):
        summed: dict[int, int] = {}
        for text in hour_texts:
            add_hist(summed, text)
        day: dict[int, int] = {}
        for text in day_texts:
            add_hist(day, text)
        assert day == summed
    assert any(by_day)


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
        # Progress per pilot, in hours of history covered: it grows to its total.
        last = {pilot: (n, total) for pilot, n, total in seen}
        assert sorted(last) == ["p1", "p2"] and all(n == t > 0 for n, t in last.values())
        assert all(b[1] >= a[1] for a, b in itertools.pairwise(seen) if a[0] == b[0])
        assert done.slots > 0
        assert await rollup_rows(rebuilt) == await rollup_rows(rig.rolled.rollups)
        rig.rolled = RollupReader(rig.raw, rebuilt, zone, Horizon(rebuilt, ttl_s=0.0))
        await assert_same_kpis(rig)


class Overloaded:
    """The raw reader of a store too busy to answer a read of more than a day in time (as
    InfluxDB under load answered a rebuild's week of history): every other read is real."""

    def __init__(self, raw: Reader) -> None:
        self.raw, self.refused = raw, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.raw, name)

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        if any(hi - lo > D for lo, hi in query.windows):
            self.refused += 1
            raise StoreUnavailable("InfluxDB did not answer within 10s (gave up after 30s)")
        return await self.raw.aggregate(query)


async def test_a_rebuild_reads_smaller_slices_when_the_store_cannot_answer_a_week(
        rig: Rig, backend_url: str) -> None:
    await rig.settle()
    url = rollup_url(backend_url).replace("_rollups", "_rebuilt")
    busy = Overloaded(rig.raw)
    async with open_store(url, mark_dirty=False) as out, open_reader(url) as rebuilt:
        done = await Worker(busy, out, rebuilt, zone).rebuild(None, None)  # type: ignore[arg-type]
        assert busy.refused > 0 and done.slots > 0
        assert await rollup_rows(rebuilt) == await rollup_rows(rig.rolled.rollups)


@pytest.mark.parametrize("named", [50, 0], ids=["silent-named", "silent-unfiltered"])
async def test_last_seen_through_the_rollups_is_the_raw_answer(
        rig: Rig, named: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Devices silent for days are found through the rollups' hours, to the nanosecond,
    whether the raw read names the silent series or (many of them) reads all of them."""
    monkeypatch.setattr(reader, "NAMED_SILENT", named)
    await rig.settle()
    measurements = ["air_quality", "noise", "parking", "lighting", "event"]
    for where, by in (((), ()), ((("pilot", ("p1",)),), ("service",)),
                      ((("pilot", ("p1",)), ("device", ("aq1", "nz1"))), ())):
        scoped = rig.rolled.scoped()
        got = await scoped.last_seen(measurements, "ingest_delay_s", where=where, by=by)
        want = await rig.raw.last_seen(measurements, "ingest_delay_s", where=where, by=by)
        assert got == want and len(got) >= 2, where
        assert "rollup" in scoped.sources
    # A bounded period too, and a device heard again after the horizon.
    assert await rig.store.write([reading("noise", "nz1", NOW, 1.0, noise_laeq=50.0)]) == []
    got = await rig.rolled.last_seen(["noise"], "ingest_delay_s", end=NOW + H)
    assert [(s.device, s.ts) for s in got] == [("nz1", NOW)]
    early = await rig.rolled.last_seen(["noise"], "ingest_delay_s", start=T, end=T + D)
    assert early == await rig.raw.last_seen(["noise"], "ingest_delay_s", start=T, end=T + D)
