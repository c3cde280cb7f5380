"""Property: any text a hostile gateway could put in a measurement, tag value, field key or
string value either comes back from the real influxd exactly as written (through the encoder,
`/write`, and the InfluxQL quoting of `latest`), or the point is refused up front for one of
the documented reasons. Never a silently altered point."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from ingest.model import TAG_KEYS, Point
from ingest.stores.influx import InfluxReader, InfluxWriter
from tests.servers import InfluxDB

T0 = 1_700_000_000 * 10**9
FLOAT_FIELD = "reading_float"
NOT_CHARS = st.characters(exclude_categories=["Cs"], exclude_characters="\n\x00\\")
# Text that line protocol and InfluxQL treat specially but that can be carried exactly;
# a backslash before an ordinary character included.
CARRIED = [*',= "\'#\t', "\\x", "\\\\y", "\\n", "µ", "😀", "\ufeff"]
# What may make a point unrepresentable (see ingest/stores/lineprotocol.py).
RISKY = ["\\", "\n", "\r", "\x00", "\\,", "\\ ", "\\=", '\\"', "time"]


def text(chunks: list[str], min_size: int = 0) -> st.SearchStrategy[str]:
    return st.lists(st.one_of(st.sampled_from(chunks), NOT_CHARS), min_size=min_size,
                    max_size=12).map("".join)


carried = text(CARRIED)
hostile = text(CARRIED + RISKY, min_size=1)
values = text(CARRIED + RISKY)  # a string value carries everything, NUL, CR and newline too


def refusal_expected(point: Point) -> bool:
    """The documented refusals, stated independently of the encoder's code."""
    names_ = [point.measurement, *point.fields, *(v for _, v in point.tags)]
    if point.measurement[0] in "#\t" or any(k[0] == "\t" for k in point.fields):
        return True
    if any(k == "time" or k in TAG_KEYS for k in point.fields):
        return True
    for name in names_:
        if any(c in name for c in "\n\r\x00") or name.endswith("\\"):
            return True
        if any(name[i] == "\\" and name[i + 1] in ',= "' for i in range(len(name) - 1)):
            return True
    return False


Roundtrip = tuple[asyncio.Runner, InfluxWriter, InfluxReader]


@pytest.fixture(scope="module")
def roundtrip(influxdb: InfluxDB) -> Iterator[Roundtrip]:
    """One store and its reader on one database for all examples, on a loop of their own."""
    url = influxdb.url(f"roundtrip_{uuid.uuid4().hex[:8]}")
    with asyncio.Runner() as runner:
        store, reader = InfluxWriter(url), InfluxReader(url)
        runner.run(store.__aenter__())
        runner.run(reader.__aenter__())
        try:
            yield runner, store, reader
        finally:
            runner.run(reader.__aexit__(None, None, None))
            runner.run(store.__aexit__(None, None, None))


_clock = itertools.count()


def store_and_read(roundtrip: Roundtrip, measurement: str,
                   tag_values: tuple[str, str, str], key: str, value: str) -> str:
    """Write one point with a string field `key` = `value`; check it comes back exactly or is
    refused exactly when expected; say which."""
    runner, store, reader = roundtrip
    pilot, gateway, device = tag_values
    # Each example is newer than all before it, so `latest` must return exactly this point.
    point = Point(measurement, (("pilot", pilot), ("gateway", gateway), ("device", device)),
                  {key: value, FLOAT_FIELD: 1.5}, T0 + next(_clock) * 10**9)
    rejected = runner.run(store.write([point]))
    if refusal_expected(point):
        assert [r.point for r in rejected] == [point]
        return "refused"
    assert rejected == []
    where = (("pilot", (pilot,)), ("gateway", (gateway,)), ("device", (device,)))
    got = runner.run(reader.latest(measurement, where=where))
    assert got == [point]
    return "stored"


names = st.builds(str.__add__, st.one_of(st.sampled_from(CARRIED), NOT_CHARS), carried)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(measurement=names, tags=st.tuples(names, names, names), key=names, value=values)
def test_carried_text_round_trips(roundtrip: Roundtrip,
                                  measurement: str, tags: tuple[str, str, str], key: str,
                                  value: str) -> None:
    outcome = store_and_read(roundtrip, measurement, tags, key, value)
    event(outcome)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(measurement=hostile, tags=st.tuples(*[hostile] * 3),
       key=hostile, value=values)
def test_hostile_text_round_trips_or_is_refused(
        roundtrip: Roundtrip, measurement: str,
        tags: tuple[str, str, str], key: str, value: str) -> None:
    event(store_and_read(roundtrip, measurement, tags, key, value))
