"""The read side of the store contract (aggregates over explicit windows, distinct values,
last seen), run against both stores with hand-computed answers: the KPIs rely on both stores
answering these the same way."""

from __future__ import annotations

import math

import pytest

from ingest.model import Point
from ingest.stores.base import Aggregate, AggRow, Distinct, Reader, Rollup, Stat, Store

S = 10**9
HOUR = 3600 * S
T0 = 1_700_000_000 * S - (1_700_000_000 * S) % HOUR  # an hour boundary, 2023-11-14T22:00Z


def aq(device: str, ts: int, pilot: str = "p1", **values: float) -> Point:
    return Point("air_quality", (("pilot", pilot), ("gateway", "g1"), ("device", device)),
                 {**values, "ingest_delay_s": 1.0}, ts)


def use(ts: int, user: str, service: str = "parking", type_: str = "use",
        device: str = "k1") -> Point:
    tags = (("pilot", "p1"), ("gateway", "g1"), ("device", device), ("service", service),
            ("type", type_))
    return Point("event", tags, {"value": 1.0, "user": user, "ingest_delay_s": 0.5}, ts)


def values(rows: list[AggRow]) -> dict[tuple[int, str, tuple[str, ...]], float]:
    return {(r.window, r.measurement, tuple(v for _, v in r.tags)): r.value for r in rows}


async def test_stats_per_window_and_tag(store: Store, reader: Reader) -> None:
    await store.write([aq("d1", T0 + i * S, no2=float(i + 1)) for i in range(10)]
                      + [aq("d2", T0 + 5 * S, no2=100.0), aq("d3", T0, pilot="p2", no2=7.0)])
    windows = ((T0, T0 + 5 * S), (T0 + 3 * S, T0 + HOUR))  # overlapping windows
    expected = {
        Stat.MEAN: {(0, "d1"): 3.0, (1, "d1"): 7.0, (1, "d2"): 100.0},
        Stat.SUM: {(0, "d1"): 15.0, (1, "d1"): 49.0, (1, "d2"): 100.0},
        Stat.MIN: {(0, "d1"): 1.0, (1, "d1"): 4.0, (1, "d2"): 100.0},
        Stat.MAX: {(0, "d1"): 5.0, (1, "d1"): 10.0, (1, "d2"): 100.0},
        Stat.COUNT: {(0, "d1"): 5.0, (1, "d1"): 7.0, (1, "d2"): 1.0},
        # nearest rank: floor(7 * 0.95 + 0.5) = 7th of 4..10; floor(5 * .95 + .5) = 5th of 1..5
        Stat.P95: {(0, "d1"): 5.0, (1, "d1"): 10.0, (1, "d2"): 100.0},
    }
    for stat, want in expected.items():
        q = Aggregate(("air_quality",), "no2", stat, windows, by=("device",),
                      where=(("pilot", ("p1",)),))
        got = {(w, tags[0]): v for (w, _, tags), v in values(await reader.aggregate(q)).items()}
        assert got == pytest.approx(want), stat


async def test_p95_follows_influxdbs_nearest_rank(store: Store, reader: Reader) -> None:
    await store.write([aq("d1", T0 + i * S, no2=float(i + 1)) for i in range(40)])
    for n in (1, 2, 3, 10, 19, 20, 21, 39, 40):
        q = Aggregate(("air_quality",), "no2", Stat.P95, ((T0, T0 + n * S),))
        [row] = await reader.aggregate(q)
        assert row.value == math.floor(n * 95 / 100 + 0.5), n


async def test_count_distinct_and_tag_in_filter(store: Store, reader: Reader) -> None:
    await store.write([use(T0, "alice"), use(T0 + S, "bob"), use(T0 + 2 * S, "alice"),
                       use(T0 + 3 * S, "carol", type_="session_end"),
                       use(T0 + 4 * S, "dave", service="kiosk", type_="session_start")])
    q = Aggregate(("event",), "user", Stat.COUNT_DISTINCT, ((T0, T0 + HOUR),),
                  by=("service",), where=(("type", ("use", "session_start")),))
    assert values(await reader.aggregate(q)) == {(0, "event", ("kiosk",)): 1.0,
                                                (0, "event", ("parking",)): 2.0}
    q = Aggregate(("event",), "value", Stat.COUNT, ((T0, T0 + HOUR),),
                  where=(("type", ()),))  # an empty IN matches nothing
    assert await reader.aggregate(q) == []


async def test_rollups_and_threshold(store: Store, reader: Reader) -> None:
    # d1: hour 0 mean 150 (100, 200), hour 1 mean 250, hour 2 mean 300; d2: hour 1 mean 210
    await store.write([aq("d1", T0, no2=100.0), aq("d1", T0 + 10 * S, no2=200.0),
                       aq("d1", T0 + HOUR, no2=250.0), aq("d1", T0 + 2 * HOUR + S, no2=300.0),
                       aq("d2", T0 + HOUR + 5 * S, no2=210.0)])
    window = ((T0, T0 + 3 * HOUR),)
    hours_above = Aggregate(("air_quality",), "no2", Stat.COUNT, window, by=("device",),
                            inner=Rollup(Stat.MEAN, 3600.0), above=200.0)
    assert values(await reader.aggregate(hours_above)) == {
        (0, "air_quality", ("d1",)): 2.0, (0, "air_quality", ("d2",)): 1.0}
    mean_of_hours = Aggregate(("air_quality",), "no2", Stat.MEAN, window,
                              inner=Rollup(Stat.MEAN, 3600.0))
    [row] = await reader.aggregate(mean_of_hours)
    assert row.value == pytest.approx((150 + 230 + 300) / 3)  # hour 1 pools d1 and d2
    busiest = Aggregate(("air_quality",), "no2", Stat.MAX, window,
                        inner=Rollup(Stat.COUNT, 1800.0))
    [row] = await reader.aggregate(busiest)
    assert row.value == 2.0
    # Sub-intervals start at the window's start, not at the epoch.
    shifted = Aggregate(("air_quality",), "no2", Stat.COUNT, ((T0 + 5 * S, T0 + 3 * HOUR),),
                        inner=Rollup(Stat.COUNT, 3600.0))
    [row] = await reader.aggregate(shifted)
    # [T0+5s, T0+1h+5s) holds 200 and 250; [T0+1h+5s, T0+2h+5s) holds 210 and 300: two
    # sub-intervals with data (epoch-aligned hours would make it three).
    assert row.value == 2.0


async def test_energy_mean_and_prefix(store: Store, reader: Reader) -> None:
    noise = [Point("noise", (("pilot", "p1"), ("gateway", "g1"), ("device", "n1")),
                   {"noise_laeq": level, "ingest_delay_s": 1.0}, T0 + i * S)
             for i, level in enumerate((60.0, 70.0))]
    letters = [Point("dead_letter", (("reason", "bad_json"),),
                     {"topic": topic, "payload": "x", "detail": "y"}, T0 + i * S)
               for i, topic in enumerate(("citypilot/v1/p_1/g/d/telemetry",
                                          "citypilot/v1/pX1/g/d/telemetry",  # `_` is literal
                                          "citypilot/v1/p_1/g/e/event", "other/p_1"))]
    await store.write(noise + letters)
    q = Aggregate(("noise",), "noise_laeq", Stat.MEAN_EXP10, ((T0, T0 + HOUR),))
    [row] = await reader.aggregate(q)
    assert row.value == pytest.approx((10**6 + 10**7) / 2)
    q = Aggregate(("dead_letter",), "topic", Stat.COUNT, ((T0, T0 + HOUR),),
                  prefix="citypilot/v1/p_1/")
    [row] = await reader.aggregate(q)
    assert row.value == 2.0


async def test_distinct_values_per_window(store: Store, reader: Reader) -> None:
    await store.write([use(T0, "alice"), use(T0 + HOUR, "bob"), use(T0 + HOUR + S, "alice"),
                       use(T0 + 2 * HOUR, "quote ' \" \\ user")])
    q = Distinct("event", "user", ((T0, T0 + HOUR), (T0, T0 + 3 * HOUR), (T0 - HOUR, T0)),
                 where=(("pilot", ("p1",)),))
    assert await reader.distinct(q) == [{"alice"}, {"alice", "bob", "quote ' \" \\ user"},
                                       set()]


async def test_first_and_last_seen_and_measurements(store: Store, reader: Reader) -> None:
    assert await reader.measurements() == []
    await store.write([aq("d1", T0, no2=1.0), aq("d1", T0 + S, no2=2.0),
                       use(T0 + 5 * S, "alice", device="d1"), aq("d2", T0, pilot="p2", no2=1.0)])
    assert await reader.measurements() == ["air_quality", "event"]
    seen = await reader.last_seen(["air_quality", "event"], "ingest_delay_s")
    assert [(s.pilot, s.device, s.measurement, s.ts) for s in seen] == [
        ("p1", "d1", "air_quality", T0 + S), ("p1", "d1", "event", T0 + 5 * S),
        ("p2", "d2", "air_quality", T0)]
    seen = await reader.last_seen(["air_quality"], "ingest_delay_s", end=T0 + S,
                                 where=(("pilot", ("p1",)),))
    assert [(s.device, s.ts) for s in seen] == [("d1", T0)]
    assert await reader.last_seen([], "ingest_delay_s") == []
    first = await reader.first_seen(["air_quality", "event"], "ingest_delay_s")
    assert [(s.pilot, s.device, s.measurement, s.ts) for s in first] == [
        ("p1", "d1", "air_quality", T0), ("p1", "d1", "event", T0 + 5 * S),
        ("p2", "d2", "air_quality", T0)]
    first = await reader.first_seen(["air_quality"], "ingest_delay_s", start=T0 + 1,
                                    where=(("pilot", ("p1",)),))
    assert [(s.device, s.ts) for s in first] == [("d1", T0 + S)]
    assert await reader.first_seen([], "ingest_delay_s") == []


@pytest.mark.parametrize("hostile", ["p1' OR '1'='1", 'p1" OR 1=1 --', "p1\\", "x\ny", "/.*/"])
async def test_hostile_filter_values_match_nothing(store: Store, reader: Reader,
                                                  hostile: str) -> None:
    await store.write([aq("d1", T0, no2=1.0)])
    q = Aggregate(("air_quality",), "no2", Stat.COUNT, ((T0, T0 + HOUR),),
                  where=(("pilot", (hostile,)),))
    assert await reader.aggregate(q) == []
    q = Aggregate(("air_quality",), "no2", Stat.COUNT, ((T0, T0 + HOUR),), prefix=hostile)
    assert await reader.aggregate(q) == []


def test_bad_aggregates_are_refused() -> None:
    with pytest.raises(ValueError, match="end after"):
        Aggregate(("m",), "f", Stat.COUNT, ((5, 5),))
    with pytest.raises(ValueError, match="rollup"):
        Aggregate(("m",), "f", Stat.P95, ((0, 5),), inner=Rollup(Stat.MEAN, 60.0))
    with pytest.raises(ValueError, match="inner"):
        Aggregate(("m",), "f", Stat.COUNT, ((0, 5),), above=1.0)


async def test_day_windows_across_a_dst_change(store: Store, reader: Reader) -> None:
    # Local days of Europe/Berlin around 2024-03-31 (23 hours long): hourly readings give
    # 24, 23 and 24 per day, whichever way the store groups adjacent windows.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from api.kpis.periods import Grain, buckets, to_ns

    berlin = ZoneInfo("Europe/Berlin")
    lo, hi = to_ns(datetime(2024, 3, 29, tzinfo=berlin)), to_ns(datetime(2024, 4, 2,
                                                                       tzinfo=berlin))
    await store.write([aq("d1", t, no2=1.0) for t in range(lo, hi, HOUR)])
    days = tuple(b.window for b in buckets(lo, hi, Grain.DAY, berlin))
    q = Aggregate(("air_quality",), "no2", Stat.COUNT, days)
    assert [r.value for r in await reader.aggregate(q)] == [24.0, 24.0, 23.0, 24.0]
    hourly = Aggregate(("air_quality",), "no2", Stat.COUNT, days,
                       inner=Rollup(Stat.COUNT, 3600.0))
    assert [r.value for r in await reader.aggregate(hourly)] == [24.0, 24.0, 23.0, 24.0]
    sets = await reader.distinct(Distinct("air_quality", "no2", days))
    assert sets == [{"1.0"}] * 4 or sets == [{"1"}] * 4


def test_adjacent_equal_windows_make_one_influxql_statement() -> None:
    from ingest.stores.influx.influxql import runs

    day = 86400 * S
    windows = [(0, day), (day, 2 * day), (2 * day, 3 * day - HOUR), (3 * day - HOUR, 4 * day),
               (5 * day, 6 * day)]
    assert [(r.first, r.count) for r in runs(windows)] == [(0, 2), (2, 1), (3, 1), (4, 1)]
    assert [(r.first, r.count) for r in runs(windows[:2], multiple_of=7 * HOUR)] == [
        (0, 1), (1, 1)]
