"""The native decoder's hand-written telemetry path gives exactly what the pydantic path gives.

Every payload is decoded twice, with the fast path on and off: the points, the rejections and
the unknown metrics must be equal. The strategies mix valid elements with every way one can
go wrong (names, types, ranges, NaN, huge integers, timestamps, extra keys, reserved names),
so the fast path is exercised both where it answers and where it must step aside.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.decode import Limits
from ingest.decode.native import NativeDecoder

NOW_MS = 1_764_000_000_000
NOW = NOW_MS * 1_000_000
TOPIC = "citypilot/v1/lisbon/gw-1/aq-7/telemetry"
fast = NativeDecoder(Limits(max_future_s=300))
slow = NativeDecoder(Limits(max_future_s=300), fast_path=False)

names = st.one_of(
    st.sampled_from(["pm25", "no2", "temperature", "noise_laeq", "soil_moisture", "x",
                     "ingest_delay_s", "event", "dead_letter", "Pm25", "pm2.5", "a" * 65,
                     "ok\n", "", "é"]),
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True))
numbers = st.one_of(
    st.floats(min_value=-50, max_value=2000), st.integers(min_value=-5, max_value=3000),
    st.sampled_from([math.nan, math.inf, 2**53 + 1, -(2**60), 10**30, True, None, "5", 1e308]),
    st.floats())
stamps = st.one_of(
    st.integers(min_value=NOW_MS - 10**9, max_value=NOW_MS + 10**6),
    st.sampled_from([None, 0, 1000, NOW_MS + 10**9, True, "2025-11-24T16:00:00Z", 1.5e12]))


def element() -> st.SearchStrategy[Any]:
    base = st.fixed_dictionaries(
        {"kind": names, "values": st.dictionaries(names, numbers, max_size=5)},
        optional={"ts": stamps, "device": st.just("other"), "extra": st.integers()})
    return st.one_of(base, base, base, st.integers(), st.lists(st.integers(), max_size=1))


payloads = st.one_of(element(), st.lists(element(), min_size=0, max_size=4))


@settings(max_examples=4000, deadline=None)
@given(payloads)
def test_fast_path_equals_the_model_path(doc: Any) -> None:
    payload = json.dumps(doc).encode()  # the stdlib writes big integers and NaN as given
    a, b = fast(TOPIC, payload, NOW), slow(TOPIC, payload, NOW)
    assert a.points == b.points
    assert [(r.reason, r.detail) for r in a.rejections] == \
        [(r.reason, r.detail) for r in b.rejections]
    assert a.unknown_metrics == b.unknown_metrics


def test_the_fast_path_answers_the_common_case() -> None:
    """Not vacuous: a plain array of readings is decoded by the fast path itself."""
    doc = [{"ts": NOW_MS - i, "kind": "air_quality", "values": {"pm25": 12.4, "no2": 31}}
           for i in range(50)]
    assert fast.fast_telemetry(doc, _identity(), NOW) is not None


def _identity() -> Any:
    from ingest import topics

    return topics.parse(TOPIC)[0]
