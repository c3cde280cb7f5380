"""The one store contract, run against both stores (as Telegraf's models/buffer_suite_test.go
runs one suite over its two buffers): whichever store a deployment names, what the collector
writes (`Store`) reads back the same way through the API's `Reader`."""

from __future__ import annotations

import re
import sqlite3
import statistics
from collections.abc import Callable
from pathlib import Path

import pytest

from ingest.model import Point, Reason, Rejection, dead_letter, spread_ns
from ingest.stores import open_reader, open_store, redact
from ingest.stores.base import (
    ALL_TIME,
    Aggregate,
    Reader,
    Stat,
    Store,
    StoreConfigError,
    StoreRejected,
    StoreUnavailable,
    TagFilter,
    Values,
)
from tests.support import count

MINUTE = 60 * 10**9
T0 = 28_333_333 * MINUTE  # 2023-11-14T22:13:00Z, on a minute boundary

HOSTILE = [
    'quote " and \'single\'', "back\\slash and trailing \\", '\\"', "comma, space = equals",
    "#hash first", "new\nline", "cr\r\nlf", "tab\tnul\x00end", "unicode µ€𝄞 😀 ü",
    "\\n is not a newline", "", " ", "=", ",",
]


def tags(**values: str) -> TagFilter:
    return tuple((key, (value,)) for key, value in values.items())


def series(field: str, start: int, end: int, stat: Stat = Stat.MEAN, every_s: float = 60.0,
           measurement: str = "air_quality", **where: str) -> Aggregate:
    """A reading series as the readings API asks for it: one window in epoch buckets."""
    return Aggregate((measurement,), field, stat, ((start, end),), where=tags(**where),
                     every_s=every_s)


async def buckets(reader: Reader, query: Aggregate) -> list[tuple[int, float]]:
    return [(r.start, r.value) for r in await reader.aggregate(query)]


def reading(device: str, ts: int, pilot: str = "p1", gateway: str = "g1",
            kind: str = "air_quality", **values: float | str) -> Point:
    return Point(kind, (("pilot", pilot), ("gateway", gateway), ("device", device)),
                 dict(values), ts)


def event(ts: int, user: str, device: str = "kiosk1", type_: str = "use") -> Point:
    tags = (("pilot", "p1"), ("gateway", "g1"), ("device", device), ("service", "parking"),
            ("type", type_))
    return Point("event", tags, {"value": 1.0, "user": user}, ts)


async def test_written_points_read_back(store: Store, reader: Reader) -> None:
    points = [reading("d1", T0 + i * 10**9, pm25=10.0 + i, no2=0.5) for i in range(3)]
    assert await store.write(points) == []
    assert await reader.latest("air_quality") == [points[-1]]
    assert await count(reader, "air_quality", "pm25") == 3


async def test_empty_write_and_unknown_measurement(store: Store, reader: Reader) -> None:
    assert await store.write([]) == []
    assert await reader.latest("nothing_here") == []
    assert await count(reader, "nothing_here", "x") == 0
    assert await reader.aggregate(series("x", T0, T0 + MINUTE, measurement="nothing_here")) == []


async def test_rewrite_stores_once_and_merges_fields(store: Store, reader: Reader) -> None:
    await store.write([reading("d1", T0, pm25=1.0)])
    await store.write([reading("d1", T0, pm25=1.0)])
    await store.write([reading("d1", T0, no2=2.0)])
    await store.write([reading("d1", T0, pm25=3.0)])
    assert await count(reader, "air_quality", "pm25") == 1
    assert await count(reader, "air_quality", "no2") == 1
    [point] = await reader.latest("air_quality")
    assert point.fields == {"pm25": 3.0, "no2": 2.0}


async def test_two_events_in_one_millisecond_stay_apart(store: Store, reader: Reader) -> None:
    first = event(spread_ns(T0, "kiosk1", "alice"), "alice")
    second = event(spread_ns(T0, "kiosk1", "bob"), "bob")
    assert first.ts != second.ts and first.ts // 10**6 == second.ts // 10**6
    await store.write([first, second])
    await store.write([first])  # a redelivery lands on the same point
    assert await count(reader, "event", "value") == 2
    assert await count(reader, "event", "user") == 2


def expected_buckets(points: list[Point], start: int, end: int, every: int,
                     agg: Stat) -> list[tuple[int, float]]:
    buckets: dict[int, list[float]] = {}
    for p in points:
        if start <= p.ts < end:
            buckets.setdefault(p.ts - p.ts % every, []).append(float(p.fields["pm25"]))
    fn: dict[Stat, Callable[[list[float]], float]] = {
        Stat.MEAN: statistics.fmean, Stat.MIN: min, Stat.MAX: max, Stat.SUM: sum,
        Stat.COUNT: lambda values: float(len(values))}
    return [(b, fn[agg](values)) for b, values in sorted(buckets.items())]


@pytest.mark.parametrize("agg", [Stat.MEAN, Stat.MIN, Stat.MAX, Stat.SUM, Stat.COUNT])
async def test_series_aggregates_in_epoch_aligned_buckets(store: Store, reader: Reader,
                                                          agg: Stat) -> None:
    offsets_s = [0, 20, 40, 60, 80, 100, 200, 220, 300]  # nothing in [120 s, 180 s)
    points = [reading("d1", T0 + s * 10**9, pm25=1.5 * i + 0.25)
              for i, s in enumerate(offsets_s)]
    points.append(reading("d2", T0 + 30 * 10**9, pm25=100.0))
    await store.write(points)
    start, end = T0 + 10 * 10**9, T0 + 300 * 10**9  # start inside the first bucket
    for every_s in (60.0, 30.0, 90.0):
        got = await buckets(reader, series("pm25", start, end, agg, every_s))
        want = expected_buckets(points, start, end, round(every_s * 10**9), agg)
        assert [b for b, _ in got] == [b for b, _ in want], f"every {every_s}s"
        assert [v for _, v in got] == pytest.approx([v for _, v in want]), f"every {every_s}s"


async def test_tag_filters(store: Store, reader: Reader) -> None:
    await store.write([
        reading("d1", T0, pilot="p1", gateway="g1", pm25=1.0),
        reading("d2", T0, pilot="p1", gateway="g2", pm25=2.0),
        reading("d1", T0, pilot="p2", gateway="g1", pm25=4.0),
    ])
    by_pilot = series("pm25", T0, T0 + MINUTE, Stat.SUM, pilot="p1")
    assert await buckets(reader, by_pilot) == [(T0, 3.0)]
    by_device = series("pm25", T0, T0 + MINUTE, Stat.SUM, device="d1")
    assert await buckets(reader, by_device) == [(T0, 5.0)]
    assert await count(reader, "air_quality", "pm25", gateway="g1") == 2
    assert await count(reader, "air_quality", "pm25", pilot="p2", gateway="g1",
                       device="d1") == 1
    [point] = await reader.latest("air_quality", where=tags(pilot="p1", device="d2"))
    assert (point.tag("gateway"), point.fields) == ("g2", {"pm25": 2.0})


async def test_latest_is_the_newest_point_of_each_device(store: Store, reader: Reader) -> None:
    await store.write([
        reading("d1", T0, pm25=1.0, no2=5.0),
        reading("d1", T0 + 10**9, pm25=2.0),  # newest for d1, without no2
        reading("d2", T0 + 5 * 10**9, pm25=7.0),
        reading("d3", T0, pilot="p2", pm25=9.0),
    ])
    latest = await reader.latest("air_quality", where=tags(pilot="p1"))
    # Not per-field last values: d1's no2 belongs to an older point.
    assert latest == [reading("d1", T0 + 10**9, pm25=2.0), reading("d2", T0 + 5 * 10**9, pm25=7.0)]


async def test_latest_event_keeps_service_and_type(store: Store, reader: Reader) -> None:
    await store.write([event(T0, "alice", type_="session_start"),
                       event(T0 + 10**9, "bob", type_="session_end")])
    [point] = await reader.latest("event")
    assert point == event(T0 + 10**9, "bob", type_="session_end")


async def test_count_in_a_time_range(store: Store, reader: Reader) -> None:
    await store.write([reading("d1", T0 + i * 10**9, pm25=float(i)) for i in range(10)])
    assert await count(reader, "air_quality", "pm25", window=(T0 + 2 * 10**9, ALL_TIME[1])) == 8
    assert await count(reader, "air_quality", "pm25", window=(ALL_TIME[0], T0 + 2 * 10**9)) == 2
    assert await count(reader, "air_quality", "pm25",
                       window=(T0 + 10**9, T0 + 4 * 10**9)) == 3
    assert await count(reader, "air_quality", "no2") == 0


async def test_dead_letters_newest_first_with_filters(store: Store, reader: Reader) -> None:
    letters = [
        dead_letter("citypilot/v1/p1/g1/d1/telemetry", Rejection(Reason.BAD_JSON, "line 1", b"{"),
                    T0),
        dead_letter("citypilot/v1/p1/g1/d1/telemetry", Rejection(Reason.BAD_JSON, "line 2", b"["),
                    T0),  # the same millisecond, other content: kept apart
        dead_letter("bad/topic", Rejection(Reason.BAD_TOPIC, "no prefix", b"x"), T0 + 10**9),
        dead_letter("citypilot/v1/p1/g1/d2/event", Rejection(Reason.OUT_OF_RANGE, "pm25", b"{}"),
                    T0 + 2 * 10**9),
    ]
    assert await store.write(letters) == []
    got = await reader.dead_letters()
    assert [d.ts for d in got] == sorted((p.ts for p in letters), reverse=True)
    assert got[0].reason == "out_of_range" and got[0].topic == "citypilot/v1/p1/g1/d2/event"
    assert (got[0].payload, got[0].detail) == ("{}", "pm25")
    bad_json = await reader.dead_letters(reason="bad_json")
    assert sorted(d.detail for d in bad_json) == ["line 1", "line 2"]
    assert [d.reason for d in await reader.dead_letters(since=T0 + 10**9)] == [
        "out_of_range", "bad_topic"]
    assert len(await reader.dead_letters(limit=2)) == 2
    assert await reader.dead_letters(reason="empty") == []


@pytest.mark.parametrize("text", HOSTILE, ids=repr)
async def test_hostile_strings_in_string_fields_round_trip(store: Store, reader: Reader,
                                                          text: str) -> None:
    point = event(T0, text)
    assert await store.write([point]) == []
    assert await reader.latest("event") == [point]
    letter = dead_letter(f"topic {text}", Rejection(Reason.BAD_SHAPE, text, text.encode()), T0)
    assert await store.write([letter]) == []
    [got] = await reader.dead_letters()
    assert (got.topic, got.payload, got.detail) == (f"topic {text}", text, text)


async def test_refused_points_are_returned_and_the_rest_stored(store: Store, reader: Reader
                                                                ) -> None:
    good = [reading("d1", T0, pm25=1.0), reading("d2", T0, pm25=2.0)]
    bad = [reading("line\nbreak", T0, pm25=3.0), reading("d3", T0, pm25=float("nan")),
           reading("d4", T0, time=1.0), reading("d5", T0)]
    rejected = await store.write([good[0], *bad, good[1]])
    assert [r.point for r in rejected] == bad
    assert "newline" in rejected[0].detail and "finite" in rejected[1].detail
    assert await reader.latest("air_quality") == good


async def test_ping_answers_on_a_store_that_takes_and_gives_points(store: Store,
                                                                   reader: Reader) -> None:
    await store.ping()
    await reader.ping()
    assert await store.write([reading("d1", T0, pm25=4.5)]) == []
    assert [p.fields for p in await reader.latest("air_quality")] == [{"pm25": 4.5}]


BAD_URLS = [
    ("postgres://u:hunter2@h/db", "not supported"),
    ("just-a-path.db", "not supported"),
    ("sqlite://relative.db", "sqlite:///path/to/file.db"),
    ("sqlite:///", "sqlite:///path/to/file.db"),
    ("influxdb://u:hunter2@h:8086", "influxdb://user:pass@host:8086/dbname"),
    ("influxdb://u:hunter2@h:port/db", "invalid port"),
    ("influxdb://h:8086/db/extra", "influxdb://user:pass@host:8086/dbname"),
]


@pytest.mark.parametrize(("url", "message"), BAD_URLS)
def test_a_bad_url_is_one_line_naming_the_fix(url: str, message: str) -> None:
    for opener in (open_store, open_reader):
        with pytest.raises(StoreConfigError, match=re.escape(message)) as info:
            opener(url)
        assert "\n" not in str(info.value) and "hunter2" not in str(info.value)
        assert isinstance(info.value, StoreRejected)  # one of the two kinds that leave stores/


def test_unknown_option_is_a_config_error(sqlite_url: str) -> None:
    with pytest.raises(StoreConfigError, match="deadline"):
        open_store(sqlite_url, deadline=3)
    with pytest.raises(StoreConfigError, match="deadline"):
        open_reader(sqlite_url, deadline=3)


@pytest.mark.parametrize(("url", "shown"), [
    ("influxdb://admin:s%40cret@db:8086/city", "influxdb://admin:***@db:8086/city"),
    ("influxdbs://admin:@db/city", "influxdbs://admin:***@db/city"),
    ("influxdb://db:8086/city", "influxdb://db:8086/city"),
    ("sqlite:///data/c.db", "sqlite:///data/c.db"),
    ("influxdb://admin:pw@db:bad/city", "influxdb://admin:***@db:bad/city"),
    ("influxdb://admin:pw@[::1/city", "influxdb://***@[::1/city"),  # unparseable
])
def test_redact_hides_the_password(url: str, shown: str) -> None:
    assert redact(url) == shown


# Below: the error half of the contract where only SQLite can show it on a real file.

async def test_sqlite_busy_is_unavailable_then_recovers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'dirs' / 'store.db'}"  # parents are created
    async with open_store(url, deadline_s=0.2) as store:
        other = sqlite3.connect(tmp_path / "nested" / "dirs" / "store.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            with pytest.raises(StoreUnavailable, match="SQLITE_BUSY"):
                await store.write([reading("d1", T0, pm25=1.0)])
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await store.write([reading("d1", T0, pm25=1.0)]) == []
    async with open_reader(url) as reader:
        assert await count(reader, "air_quality", "pm25") == 1


async def test_sqlite_path_that_cannot_be_a_database_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    for path in (tmp_path, tmp_path / "file" / "store.db"):
        for opener in (open_store, open_reader):
            with pytest.raises(StoreConfigError, match=re.escape(str(path))):
                async with opener(f"sqlite:///{path}"):
                    pass


BINARY = b"\xff\xfe\x00 not UTF-8 \x80\xc3(" + bytes(range(256))


@pytest.mark.parametrize("payload", [
    BINARY, b"\xc3", b"ok until here \xe2\x82", "valid µ€😀 \x00 nul".encode(), b"",
], ids=["binary", "lone lead byte", "cut character", "utf-8", "empty"])
async def test_a_dead_letter_keeps_its_payload_byte_for_byte(store: Store, reader: Reader,
                                                             payload: bytes) -> None:
    letter = dead_letter("citypilot/v1/p1/g1/d1/telemetry",
                         Rejection(Reason.BAD_ENCODING, "not UTF-8", payload), T0)
    assert await store.write([letter]) == []
    [got] = await reader.dead_letters()
    assert got.raw() == payload
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        assert got.payload_encoding == "base64"
    else:  # UTF-8 stays readable text, as before
        assert (got.payload_encoding, got.payload) == ("utf-8", text)


async def test_a_large_binary_dead_letter_is_cut_and_says_so(store: Store,
                                                              reader: Reader) -> None:
    payload = BINARY * 100  # 26,400 bytes, past the 16 KiB cap
    letter = dead_letter("t", Rejection(Reason.TOO_LARGE, "too large", payload), T0)
    await store.write([letter])
    [got] = await reader.dead_letters()
    assert got.payload_encoding == "base64"
    assert got.raw() == payload[:16 * 1024]
    assert got.detail == f"too large [payload: the first {16 * 1024} of {len(payload)} bytes]"


async def test_a_heartbeat_status_reads_back_as_the_newest_status(store: Store,
                                                                  reader: Reader) -> None:
    from ingest.decode.native import NativeDecoder

    decode = NativeDecoder()
    topic = "citypilot/v1/p1/g1/d1/status"
    now = T0 + 10 * 10**9
    full = decode(topic, b'{"ts": %d, "state": "online"}' % (T0 // 10**6), now).points
    beat = decode(topic, b'{"ts": %d}' % (T0 // 10**6 + 5000), now).points
    assert await store.write([*full, *beat]) == []
    [latest] = await reader.latest("device_status")
    assert (latest.ts, latest.fields) == (T0 + 5 * 10**9, {"ingest_delay_s": 5.0})


async def test_an_event_alone_and_inside_an_array_is_one_point(store: Store,
                                                               reader: Reader) -> None:
    from ingest.decode.native import NativeDecoder

    decode = NativeDecoder()
    topic = "citypilot/v1/p1/g1/kiosk1/event"
    one = b'{"ts": %d, "service": "parking", "type": "use", "user": "u1"}' % (T0 // 10**6)
    two = b'{"ts": %d, "service": "parking", "type": "use", "user": "u2"}' % (T0 // 10**6)
    for payload in (one, b"[" + one + b"]", b"[" + two + b", " + one + b"]"):
        assert await store.write(decode(topic, payload, T0 + 10**9).points) == []
    assert await count(reader, "event", "value") == 2  # u1 once, u2 once


async def test_values_page_through_one_series_newest_first(store: Store, reader: Reader
                                                           ) -> None:
    points = [reading("aq1", T0 + i * MINUTE, pm25=float(i)) for i in range(10)]
    points += [reading("aq2", T0 + i * MINUTE, pm25=100.0 + i) for i in range(3)]
    points += [reading("aq1", T0 + 20 * MINUTE, pm10=5.0)]  # another field: not a pm25 row
    await store.write(points)
    one = tags(pilot="p1", gateway="g1", device="aq1")
    window = (T0, T0 + 30 * MINUTE)
    newest = await reader.values(Values("air_quality", "pm25", window, one, limit=4))
    assert [(r.ts, r.value) for r in newest] == [(T0 + i * MINUTE, float(i))
                                                 for i in (9, 8, 7, 6)]
    assert {(r.pilot, r.gateway, r.device) for r in newest} == {("p1", "g1", "aq1")}
    page = await reader.values(Values("air_quality", "pm25", window, one, limit=4, offset=8))
    assert [r.value for r in page] == [1.0, 0.0]
    oldest = await reader.values(Values("air_quality", "pm25", (T0 + 2 * MINUTE, T0 + 5 * MINUTE),
                                        one, oldest_first=True))
    assert [r.value for r in oldest] == [2.0, 3.0, 4.0]
    both = await reader.values(Values("air_quality", "pm25", window, tags(pilot="p1"),
                                      limit=100))
    assert len(both) == 13 and {r.device for r in both} == {"aq1", "aq2"}
    assert [r.ts for r in both] == sorted((r.ts for r in both), reverse=True)
    assert await reader.values(Values("air_quality", "nothing", window, one)) == []
