"""Sparkplug B under hypothesis: nothing an edge node sends — arbitrary bytes on any topic,
arbitrary sessions of births and data with any metric fields — makes the decoder raise, and
what it stores and replies keeps its shape. The table-driven scenarios are in
test_sparkplug.py, whose payload builders these use."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode.sparkplug import SparkplugDecoder
from ingest.model import Decoded
from tests.unit.test_sparkplug import MS, NBIRTH, T0, decoder, payload, topic

SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
TOPICS = st.sampled_from([topic(k) for k in ("NBIRTH", "NDATA", "NDEATH", "NCMD")]
                         + [topic(k, device="d") for k in ("DBIRTH", "DDATA", "DDEATH")]
                         + ["spBv1.0/STATE/h", "spBv1.0//NDATA/e", "spBv1.0/g/NDATA/e/x/y",
                            "spBv1.0", "", "#"]) | st.text(max_size=30)
SCALARS = st.one_of(
    st.tuples(st.just("int_value"), st.integers(0, 2**32 - 1)),
    st.tuples(st.just("long_value"), st.integers(0, 2**64 - 1)),
    st.tuples(st.just("float_value"), st.floats(width=32)),
    st.tuples(st.just("double_value"), st.floats()),
    st.tuples(st.just("boolean_value"), st.booleans()),
    st.tuples(st.just("string_value"), st.text(max_size=8)),
    st.tuples(st.just("bytes_value"), st.binary(max_size=8)),
)
METRICS = st.builds(
    lambda name, alias, dt, ts, hist, null, value: {
        k: v for k, v in {"name": name, "alias": alias, "datatype": dt, "timestamp": ts,
                          "is_historical": hist, "is_null": null, value[0]: value[1]}.items()
        if v is not None},
    st.none() | st.sampled_from(["bdSeq", "Inputs/Temperature", "Level", "battery", "x/"])
    | st.text(max_size=10),
    st.none() | st.integers(0, 12) | st.integers(0, 2**64 - 1),
    st.none() | st.integers(0, 40),
    st.none() | st.integers(0, 2**64 - 1) | st.integers(T0 - 10**9, T0 + 10**6),
    st.none() | st.booleans(), st.none() | st.booleans(), SCALARS)


def _check(d: SparkplugDecoder, t: str, raw: bytes) -> None:
    out = Decoded()
    d.decode(out, t, raw, T0 * MS)  # no backstop: must not raise
    for p in out.points:
        assert [k for k, _ in p.tags] == ["pilot", "gateway", "device"]
        assert isinstance(p.fields["time_source"], str)
        assert all(isinstance(v, float | str) for v in p.fields.values())
    for reply_topic, _ in out.replies:
        assert reply_topic.startswith("spBv1.0/") and "/NCMD/" in reply_topic


@SETTINGS
@given(t=TOPICS, raw=st.binary(max_size=300))
def test_arbitrary_bytes(t: str, raw: bytes) -> None:
    d = decoder()
    d(*NBIRTH[:2], T0 * MS)
    _check(d, t, raw)


@SETTINGS
@given(born=st.booleans(),
       session=st.lists(st.tuples(TOPICS, st.lists(METRICS, max_size=6),
                                  st.none() | st.integers(0, 300),
                                  st.none() | st.integers(0, 2**64 - 1)), max_size=6))
def test_arbitrary_sessions(born: bool, session: list[tuple[str, list[dict[str, Any]],
                                                            int | None, int | None]]) -> None:
    d = decoder()
    if born:
        d(*NBIRTH[:2], T0 * MS)
    for t, metrics, seq, ts in session:
        _check(d, t, payload(*metrics, seq=seq, ts=ts))
