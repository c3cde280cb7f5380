"""The rollup plan: which part of a query reads rollups, and how the parts finish."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from api.kpis.periods import local_at, segments
from api.kpis.rollups.plan import HOUR_NS, plan
from ingest.stores.base import Aggregate, AggRow, Rollup, Stat

H = HOUR_NS
TAGS = (("device", "d1"),)


def q(stat: Stat, windows: tuple[tuple[int, int], ...], inner: Rollup | None = None,
      by: tuple[str, ...] = ("device",), above: float | None = None) -> Aggregate:
    return Aggregate(("air_quality",), "no2", stat, windows, by=by, inner=inner, above=above)


@pytest.mark.parametrize(("query", "horizon", "rolled", "raw"), [
    # Before the horizon: rollups only; across it: both, cut on the hour.
    (q(Stat.COUNT, ((0, 24 * H),)), 30 * H, [(0, 24 * H)], None),
    (q(Stat.COUNT, ((0, 24 * H),)), 10 * H, [(0, 10 * H)], [(10 * H, 24 * H)]),
    # A horizon inside an hour cuts at the hour before it.
    (q(Stat.SUM, ((0, 24 * H),)), 10 * H + 5, [(0, 10 * H)], [(10 * H, 24 * H)]),
    # A window that ends inside an hour reads its last piece raw.
    (q(Stat.MAX, ((0, 3 * H + 7),)), 30 * H, [(0, 3 * H)], [(3 * H, 3 * H + 7)]),
    # An inner 2-hour rollup cuts on a whole 2 hours from the window's start.
    (q(Stat.COUNT, ((0, 24 * H),), Rollup(Stat.COUNT, 7200.0)), 11 * H,
     [(0, 10 * H)], [(10 * H, 24 * H)]),
])
def test_windows_are_cut_where_rollups_end(query: Aggregate, horizon: int,
                                           rolled: list[tuple[int, int]],
                                           raw: list[tuple[int, int]] | None) -> None:
    p = plan(query, horizon)
    assert p is not None and p.hours is not None
    assert list(p.hours.queries[0][1].windows) == rolled
    assert (list(p.raw.queries[0][1].windows) if p.raw else None) == raw


@pytest.mark.parametrize("query", [
    q(Stat.P95, ((0, H),)),  # a percentile does not merge
    q(Stat.COUNT, ((5, H),)),  # not on a whole hour
    q(Stat.COUNT, ((0, H),), Rollup(Stat.COUNT, 600.0)),  # inner finer than an hour
    q(Stat.MEAN, ((0, H),), Rollup(Stat.MEAN, 3600.0), by=()),  # a mean of means
    q(Stat.COUNT, ((0, 4 * H),), Rollup(Stat.MEAN, 7200.0)),
    Aggregate(("dead_letter",), "topic", Stat.COUNT, ((0, H),), prefix="citypilot/v1/p1/"),
])
def test_what_rollups_cannot_answer_exactly_reads_raw(query: Aggregate) -> None:
    assert plan(query, 10 * H) is None


def test_nothing_before_the_horizon_reads_raw() -> None:
    assert plan(q(Stat.COUNT, ((5 * H, 6 * H),)), 5 * H) is None


def test_a_mean_is_the_sum_over_the_count_of_both_sides() -> None:
    p = plan(q(Stat.MEAN, ((0, 4 * H),)), 2 * H)
    assert p is not None and p.hours is not None and p.raw is not None
    assert [(part, a.field, a.stat) for part, a in p.hours.queries] == [
        ("sum", "no2__sum", Stat.SUM), ("count", "no2__count", Stat.SUM)]
    assert [(part, a.field, a.stat) for part, a in p.raw.queries] == [
        ("sum", "no2", Stat.SUM), ("count", "no2", Stat.COUNT)]
    # rollups: 3 readings summing to 30; raw: 1 reading of 50 -> (30 + 50) / 4
    aq = "air_quality"
    rows = p.finish([[[AggRow(0, aq, TAGS, 30.0, 0)], [AggRow(0, aq, TAGS, 3, 0)]],
                     [[AggRow(0, aq, TAGS, 50.0, 0)], [AggRow(0, aq, TAGS, 1, 0)]]])
    assert rows == [AggRow(0, aq, TAGS, 20.0, 0)]


def test_energy_means_are_weighed_by_their_counts() -> None:
    p = plan(Aggregate(("noise",), "noise_laeq", Stat.MEAN_EXP10, ((0, 2 * H),), by=("device",)),
             H)
    assert p is not None
    # rollups: e10 sum 3000 over 2 readings; raw: energy mean 600 over 3 -> (3000 + 1800) / 5
    rows = p.finish([[[AggRow(0, "noise", TAGS, 3000.0, 0)], [AggRow(0, "noise", TAGS, 2.0, 0)]],
                     [[AggRow(0, "noise", TAGS, 600.0, 0)], [AggRow(0, "noise", TAGS, 3.0, 0)]]])
    assert rows == [AggRow(0, "noise", TAGS, 960.0, 0)]


def test_extremes_and_windows_map_back() -> None:
    p = plan(q(Stat.MIN, ((7, 8), (0, 2 * H), (2 * H, 4 * H))), 3 * H)
    assert p is not None and p.hours is not None and p.raw is not None
    assert p.hours.origin == (1, 2) and p.raw.origin == (0, 2)
    rows = p.finish([[[AggRow(0, "m", TAGS, 5.0, 0), AggRow(1, "m", TAGS, 9.0, 0)]],
                     [[AggRow(0, "m", TAGS, 1.0, 0), AggRow(1, "m", TAGS, 4.0, 0)]]])
    assert rows == [AggRow(0, "m", TAGS, 1.0, 7), AggRow(1, "m", TAGS, 5.0, 0),
                    AggRow(2, "m", TAGS, 4.0, 2 * H)]


UTC = ZoneInfo("UTC")
BERLIN = ZoneInfo("Europe/Berlin")
D = 24 * H


def test_whole_local_days_read_day_rollups_and_the_hours_around_them_hour_rollups() -> None:
    # 1970-01-01 is UTC+1 in Berlin: its local midnights are 23:00 UTC.
    p = plan(q(Stat.MEAN, ((5 * H, 3 * D),)), 3 * D, BERLIN)
    assert p is not None and p.days is not None and p.hours is not None and p.raw is None
    assert list(p.days.queries[0][1].windows) == [(23 * H, 2 * D + 23 * H)]
    assert [(part, a.field, a.stat) for part, a in p.days.queries] == [
        ("sum", "no2__day_sum", Stat.SUM), ("count", "no2__day_count", Stat.SUM)]
    assert list(p.hours.queries[0][1].windows) == [(5 * H, 23 * H), (2 * D + 23 * H, 3 * D)]
    assert p.hours.origin == (0, 0)
    # day points: 30 over 3; hour points: 10 over 1 and 40 over 4 -> 80 / 8
    aq = "air_quality"
    rows = p.finish([[[AggRow(0, aq, TAGS, 30.0, 0)], [AggRow(0, aq, TAGS, 3, 0)]],
                     [[AggRow(0, aq, TAGS, 10.0, 0), AggRow(1, aq, TAGS, 40.0, 0)],
                      [AggRow(0, aq, TAGS, 1, 0), AggRow(1, aq, TAGS, 4, 0)]]])
    assert rows == [AggRow(0, aq, TAGS, 10.0, 5 * H)]


def test_days_end_at_the_last_local_midnight_before_the_horizon() -> None:
    p = plan(q(Stat.COUNT, ((0, 5 * D),)), 2 * D + 5 * H, UTC)
    assert p is not None and p.days is not None and p.hours is not None and p.raw is not None
    assert list(p.days.queries[0][1].windows) == [(0, 2 * D)]
    assert list(p.hours.queries[0][1].windows) == [(2 * D, 2 * D + 5 * H)]
    assert list(p.raw.queries[0][1].windows) == [(2 * D + 5 * H, 5 * D)]


def test_the_highest_hourly_mean_is_a_day_part_and_other_inner_rollups_are_not() -> None:
    p = plan(q(Stat.MAX, ((0, 2 * D),), Rollup(Stat.MEAN, 3600.0), ("gateway", "device")),
             3 * D, UTC)
    assert p is not None and p.days is not None and p.hours is None
    [(_, day)] = p.days.queries
    assert (day.field, day.stat, day.inner) == ("no2__day_hmax", Stat.MAX, None)
    # Hours above a limit: a count of hourly means, from hour rollups only.
    p = plan(q(Stat.COUNT, ((0, 2 * D),), Rollup(Stat.MEAN, 3600.0), ("gateway", "device"),
               above=200.0), 3 * D, UTC)
    assert p is not None and p.days is None and p.hours is not None


@pytest.mark.parametrize(("tz", "window"), [
    (UTC, (5 * H, 20 * H)),  # no whole day in it
    (ZoneInfo("Asia/Kolkata"), (0, 5 * D)),  # midnights on half hours
    (None, (0, 5 * D)),  # the zone is not known (several pilots)
])
def test_without_a_whole_day_on_whole_hours_hour_rollups_answer(
        tz: ZoneInfo | None, window: tuple[int, int]) -> None:
    p = plan(q(Stat.SUM, (window,)), 10 * D, tz)
    assert p is not None and p.days is None and p.hours is not None


def lden_q(stat: Stat, windows: tuple[tuple[int, int], ...]) -> Aggregate:
    return Aggregate(("noise",), "noise_laeq", stat, windows, by=("gateway", "device"))


def test_whole_segments_of_days_read_the_day_points_segment_sums() -> None:
    # Lden's night of day 1 and day of day 2 (UTC): 23:00-07:00 and 07:00-19:00.
    night, day = (D + 23 * H, 2 * D + 7 * H), (2 * D + 7 * H, 2 * D + 19 * H)
    p = plan(lden_q(Stat.MEAN_EXP10, (night, day)), 10 * D, UTC, layout=2)
    assert p is not None and p.hours is None and p.days is None and p.raw is None
    by_hour = {s.queries[0][1].field: s for s in p.segments}
    assert sorted(by_hour) == ["noise_laeq__day_e10_h00", "noise_laeq__day_e10_h07",
                               "noise_laeq__day_e10_h23"]
    # Each segment is read on the day point of its day, mapped back to its window.
    assert list(by_hour["noise_laeq__day_e10_h23"].queries[0][1].windows) == [(D, 2 * D)]
    assert by_hour["noise_laeq__day_e10_h00"].origin == (0,)
    assert list(by_hour["noise_laeq__day_e10_h07"].queries[0][1].windows) == [(2 * D, 3 * D)]
    assert by_hour["noise_laeq__day_e10_h07"].origin == (1,)
    assert [(part, a.field, a.stat) for part, a in by_hour["noise_laeq__day_e10_h23"].queries
            ] == [("e10", "noise_laeq__day_e10_h23", Stat.SUM),
                  ("count", "noise_laeq__day_count_h23", Stat.SUM)]
    # The night's energy mean is its two segments' energy sum over their count.
    n, tags = "noise", (("gateway", "g"), ("device", "d"))
    answers = {"noise_laeq__day_e10_h00": [[AggRow(0, n, tags, 70.0, 0)],
                                           [AggRow(0, n, tags, 7, 0)]],
               "noise_laeq__day_e10_h07": [[AggRow(0, n, tags, 24.0, 0)],
                                           [AggRow(0, n, tags, 12, 0)]],
               "noise_laeq__day_e10_h23": [[AggRow(0, n, tags, 10.0, 0)],
                                           [AggRow(0, n, tags, 1, 0)]]}
    rows = p.finish([answers[s.queries[0][1].field] for s in p.sides])
    assert rows == [AggRow(0, n, tags, 10.0, night[0]), AggRow(1, n, tags, 2.0, day[0])]


@pytest.mark.parametrize(("query", "tz", "layout"), [
    (lden_q(Stat.MEAN_EXP10, ((7 * H, 19 * H),)), UTC, 1),  # rollups of an older layout
    (lden_q(Stat.MEAN_EXP10, ((7 * H, 18 * H),)), UTC, 2),  # 18:00 is no segment edge
    (lden_q(Stat.MEAN_EXP10, ((7 * H, 19 * H),)), ZoneInfo("Asia/Kolkata"), 2),
    (lden_q(Stat.MEAN, ((7 * H, 19 * H),)), UTC, 2),  # segments hold counts and energy only
    (q(Stat.COUNT, ((7 * H, 19 * H),)), UTC, 2),  # not a level: no segment sums
])
def test_other_pieces_read_hour_rollups(query: Aggregate, tz: ZoneInfo, layout: int) -> None:
    p = plan(query, 10 * D, tz, layout)
    assert p is not None and p.segments == () and p.hours is not None


def test_segments_follow_local_time_across_a_dst_change() -> None:
    rome = ZoneInfo("Europe/Rome")
    cuts = segments(date(2026, 3, 29), rome)  # 23 hours: 02:00 is skipped
    assert [hour for hour, _, _ in cuts] == [0, 7, 19, 23]
    assert [(hi - lo) // H for _, lo, hi in cuts] == [6, 12, 4, 1]
    assert cuts[1][1] == local_at(date(2026, 3, 29), 7, rome)


def hours_q(measurements: tuple[str, ...] = ("air_quality",),
            by: tuple[str, ...] = ("gateway", "device"), every_s: float = 3600.0
            ) -> Aggregate:
    # Availability's question: per sensor, the hours with at least one reading.
    return Aggregate(measurements, "ingest_delay_s", Stat.COUNT, ((0, 3 * D),), by=by,
                     inner=Rollup(Stat.COUNT, every_s))


def test_hours_with_data_of_whole_days_are_a_day_part_of_layout_2() -> None:
    p = plan(hours_q(), 10 * D, UTC, layout=2)
    assert p is not None and p.days is not None and p.hours is None
    [(_, day)] = p.days.queries
    assert (day.field, day.stat, day.inner, day.windows) == (
        "ingest_delay_s__day_hours", Stat.SUM, None, ((0, 3 * D),))


@pytest.mark.parametrize(("query", "layout"), [
    (hours_q(), 1),  # older day points do not hold them
    (hours_q(every_s=7200.0), 2),  # two-hour slots are not a count of hours
    (hours_q(by=("gateway",)), 2),  # a gateway's devices share hours: not a sum
    (hours_q(("air_quality", "event")), 2),  # events: a series per service and type
])
def test_other_slot_counts_read_hour_rollups(query: Aggregate, layout: int) -> None:
    p = plan(query, 10 * D, UTC, layout)
    assert p is not None and p.days is None and p.hours is not None


def test_a_mean_of_hourly_means_of_whole_days_is_a_day_part_of_layout_2() -> None:
    # Utilisation's question: per sensor, the mean of its hourly mean occupancies.
    query = Aggregate(("parking",), "occupancy", Stat.MEAN, ((0, 3 * D),),
                      by=("gateway", "device"), inner=Rollup(Stat.MEAN, 3600.0))
    p = plan(query, 10 * D, UTC, layout=2)
    assert p is not None and p.days is not None and p.hours is None
    assert [(part, a.field, a.stat, a.inner) for part, a in p.days.queries] == [
        ("sum", "occupancy__day_msum", Stat.SUM, None),
        ("count", "occupancy__day_hours", Stat.SUM, None)]
    old = plan(query, 10 * D, UTC, layout=1)
    assert old is not None and old.days is None and old.hours is not None
