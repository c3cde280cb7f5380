"""Finishing one series-hour's rollup fields from the parts the store answered."""

from __future__ import annotations

from api.kpis.rollups.summary import add_hist, encode_hist, finish


def test_mean_and_energy_sum_are_derived_from_the_parts() -> None:
    got = finish({"pm25__count": 4.0, "pm25__sum": 40.0, "pm25__min": 5.0, "pm25__max": 15.0,
                  "laeq__count": 2.0, "laeq__sum": 120.0, "laeq__e10": 1e6})
    assert got == {"laeq__count": 2.0, "laeq__e10": 2e6, "laeq__mean": 60.0,
                   "laeq__sum": 120.0, "pm25__count": 4.0, "pm25__max": 15.0,
                   "pm25__mean": 10.0, "pm25__min": 5.0, "pm25__sum": 40.0}


def test_a_field_that_landed_between_the_part_queries_is_left_for_the_next_pass() -> None:
    # A backfill wrote `battery` after the count query and before the sum query.
    got = finish({"battery__sum": 80.0, "battery__min": 80.0, "battery__max": 80.0,
                  "pm25__count": 1.0, "pm25__sum": 7.0, "pm25__min": 7.0, "pm25__max": 7.0})
    assert got == {"pm25__count": 1.0, "pm25__max": 7.0, "pm25__mean": 7.0,
                   "pm25__min": 7.0, "pm25__sum": 7.0}
    assert finish({"battery__sum": 80.0}) == {}


def test_a_delay_histogram_round_trips_and_adds_up() -> None:
    counts = {-3: 1, 0: 2, 1: 5, 2: 1, 400: 7}
    text = encode_hist(3600 * 10**9, counts)
    assert text == "3600000000000;-3:1,3:2,1:5,1:1,398:7"  # steps from the bucket before
    total: dict[int, int] = {}
    add_hist(total, text)
    add_hist(total, encode_hist(7200 * 10**9, {1: 1}))
    add_hist(total, encode_hist(7200 * 10**9, {}))
    assert total == {**counts, 1: 6}
