"""The fixed log buckets: every value is read back within the stated relative error, the
bound is tight (a coarser bucket would exceed it), and percentiles follow nearest rank."""

from __future__ import annotations

import math

import pytest

from ingest.stores.histogram import ACCURACY, TINY, bucket, percentile, value


def test_every_value_reads_back_within_the_accuracy() -> None:
    worst = 0.0
    for step in range(-7000, 12000):  # 1e-7 s .. 1e12 s, finer than the buckets
        for sign in (1.0, -1.0):
            x = sign * 10 ** (step / 1000)
            got = value(bucket(x))
            if abs(x) < TINY:
                assert got == 0.0
                continue
            error = abs(got - x) / abs(x)
            assert error <= ACCURACY * (1 + 1e-9), x
            worst = max(worst, error)
    assert worst > 0.99 * ACCURACY  # the bound is the buckets' own, not a loose one


@pytest.mark.parametrize("accuracy", [0.01, 0.05, 0.2])
def test_boundaries_fall_in_the_bucket_they_start(accuracy: float) -> None:
    gamma = (1 + accuracy) / (1 - accuracy)
    top = math.ceil(math.log(1e12 / TINY) / math.log(gamma))  # edges up to 1e12 s
    for k in range(1, top):
        edge = TINY * gamma ** (k - 1)
        assert bucket(edge, accuracy) in (k, k - 1)  # float rounding of the edge itself
        assert abs(value(bucket(edge, accuracy), accuracy) - edge) <= accuracy * edge * 1.000001


def test_buckets_are_ordered_as_their_values() -> None:
    xs = [-5.0, -1.0, -1e-3, 0.0, 1e-9, 1e-3, 1.0, 5.0]
    ks = [bucket(x) for x in xs]
    assert ks == sorted(ks) and bucket(1e-9) == bucket(0.0) == 0
    assert bucket(float("nan")) == 0


def test_percentile_is_nearest_rank_within_the_accuracy() -> None:
    for n in (1, 2, 3, 10, 19, 20, 21, 40):
        values = [float(i + 1) for i in range(n)]
        counts: dict[int, int] = {}
        for x in values:
            counts[bucket(x)] = counts.get(bucket(x), 0) + 1
        want = values[math.floor(n * 0.95 + 0.5) - 1]
        got = percentile(counts, 95)
        assert got is not None and abs(got - want) <= ACCURACY * want, n
    assert percentile({}, 95) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        bucket(1.0, 1.5)
