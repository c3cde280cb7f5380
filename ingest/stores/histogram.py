"""Fixed log buckets with a bounded relative error: how a percentile is read off counts.

A value x with |x| >= `TINY` falls in bucket ±k (the sign of x), the k-th of the fixed
boundaries TINY·γ^(k-1) <= |x| < TINY·γ^k with γ = (1+a)/(1-a); smaller values fall in bucket
0. Each bucket is read as 2·lo·hi/(lo+hi), which is within a·|x| of every x in it (the
mapping of DDSketch, without its collapsing: the index is bounded by the int64 nanoseconds
of a store's time range, about 3,900 buckets at 1 %), and bucket 0 as 0. So a percentile
taken from the summed counts is the nearest-rank percentile of the values to within a
relative error of `a` (an absolute 1 µs below `TINY`).

The stores count values per bucket (`Histogram`), the rollups keep the counts per hour, and
both use `bucket` here, so that every side agrees on every boundary.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

ACCURACY = 0.01  # the relative error of a percentile read off the buckets
TINY = 1e-6  # below this magnitude (seconds, for delays) a value counts as 0


def _gamma(accuracy: float) -> float:
    if not 0.0 < accuracy < 1.0:
        raise ValueError(f"a relative accuracy is between 0 and 1, not {accuracy!r}")
    return (1.0 + accuracy) / (1.0 - accuracy)


def bucket(x: float, accuracy: float = ACCURACY) -> int:
    """The bucket of `x` (0 for |x| < TINY; negative for negative x)."""
    size = abs(x)
    if not size >= TINY:  # NaN too
        return 0
    gamma = _gamma(accuracy)
    k = math.floor(math.log(size / TINY) / math.log(gamma)) + 1
    # The logarithm may land a value on a boundary in the neighbouring bucket: step back in.
    lo = TINY * gamma ** (k - 1)
    if size < lo:
        k -= 1
    elif size >= lo * gamma:
        k += 1
    return k if x > 0 else -k


def value(k: int, accuracy: float = ACCURACY) -> float:
    """What bucket `k` is read as: within `accuracy` (relative) of every value in it."""
    if k == 0:
        return 0.0
    gamma = _gamma(accuracy)
    mid = TINY * gamma ** (abs(k) - 1) * (2.0 * gamma / (1.0 + gamma))  # 2·lo·hi/(lo+hi)
    return mid if k > 0 else -mid


def percentile(counts: Mapping[int, int], p: float, accuracy: float = ACCURACY
               ) -> float | None:
    """The nearest-rank `p`-th percentile (InfluxDB's rule: the floor(n·p/100 + 0.5)-th
    smallest value) of the values counted per bucket; None without values."""
    n = sum(counts.values())
    rank = math.floor(n * p / 100.0 + 0.5)
    if n <= 0 or rank < 1:
        return None
    seen = 0
    for k in sorted(counts):  # bucket order is value order, negative buckets included
        seen += counts[k]
        if seen >= rank:
            return value(k, accuracy)
    return None
