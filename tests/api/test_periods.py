"""Buckets in a pilot's timezone: local midnights, ISO weeks, months, DST days of 23 and 25
hours (what neither store can do on its own)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from api.kpis.periods import Grain, buckets, days_before, from_ns, rfc3339, to_ns

LISBON = ZoneInfo("Europe/Lisbon")
H = 3600 * 10**9


def local(*args: int, tz: ZoneInfo = LISBON) -> int:
    return to_ns(datetime(*args, tzinfo=tz))  # type: ignore[misc]


def test_days_across_the_spring_and_autumn_changes() -> None:
    spring = buckets(local(2024, 3, 30), local(2024, 4, 1), Grain.DAY, LISBON)
    assert [(b.hi - b.lo) // H for b in spring] == [24, 23]  # March 31st loses an hour
    autumn = buckets(local(2024, 10, 27), local(2024, 10, 28), Grain.DAY, LISBON)
    assert [(b.hi - b.lo) // H for b in autumn] == [25]


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    weeks = buckets(local(2024, 1, 3), local(2024, 1, 22), Grain.WEEK, LISBON)  # a Wednesday
    assert [from_ns(b.lo, LISBON).date() for b in weeks] == [
        date(2024, 1, 3), date(2024, 1, 8), date(2024, 1, 15)]
    months = buckets(local(2023, 12, 15), local(2024, 3, 1), Grain.MONTH, LISBON)
    assert [from_ns(b.lo, LISBON).date() for b in months] == [
        date(2023, 12, 15), date(2024, 1, 1), date(2024, 2, 1)]
    assert months[-1].hi == local(2024, 3, 1)


def test_a_week_back_is_seven_local_days() -> None:
    end = local(2024, 4, 2)
    assert days_before(end, 7, LISBON) == local(2024, 3, 26)  # 167 hours across the change
    assert (end - days_before(end, 7, LISBON)) // H == 167


def test_rfc3339_carries_the_local_offset() -> None:
    assert rfc3339(local(2024, 7, 1), LISBON) == "2024-07-01T00:00:00+01:00"
    assert rfc3339(local(2024, 7, 1, tz=ZoneInfo("UTC")), ZoneInfo("UTC")) == (
        "2024-07-01T00:00:00Z")


def test_pieces_cut_overlapping_windows_once() -> None:
    from api.kpis.periods import pieces

    windows = [(0, 7), (1, 8), (10, 12), (0, 12)]
    parts, members = pieces(windows)
    assert parts == [(0, 1), (1, 7), (7, 8), (8, 10), (10, 12)]
    assert members == [[0, 1], [1, 2], [4], [0, 1, 2, 3, 4]]
    parts, members = pieces([(0, 7), (10, 12)])  # the gap is not read
    assert parts == [(0, 7), (10, 12)] and members == [[0], [1]]


def test_the_period_grain_is_the_whole_period_in_one_bucket() -> None:
    [whole] = buckets(local(2024, 1, 3), local(2024, 7, 1), Grain.PERIOD, LISBON)
    assert (whole.index, whole.lo, whole.hi) == (0, local(2024, 1, 3), local(2024, 7, 1))
