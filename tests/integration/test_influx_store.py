"""What only the InfluxDB store does, against real influxd processes: creating its database,
outages (stopped, frozen, down at start), refused points among good ones, credentials, and
raw InfluxQL reads (what the dashboards' check runs).
The response classification itself (Telegraf's http.go rules) and the retry policy are pure
tables at the end."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest

from ingest.model import Point
from ingest.stores.base import StoreRejected, StoreUnavailable
from ingest.stores.influx import InfluxReader, InfluxWriter
from ingest.stores.influx.http import (
    classify_write,
    dropped_points,
    error_text,
    retry_after_s,
    retry_delay_s,
)
from tests.servers import InfluxDB
from tests.support import count

T0 = 1_700_000_000 * 10**9
Factory = Callable[..., InfluxDB]


def reading(i: int, **values: float | str) -> Point:
    tags = (("pilot", "p1"), ("gateway", "g1"), ("device", "d1"))
    return Point("air_quality", tags, values or {"pm25": float(i)}, T0 + i * 10**9)


def stored(server: InfluxDB, database: str, field: str = "pm25",
           auth: tuple[str, str] | None = None) -> list[list[object]]:
    """The (time, value) rows a user sees with the influx shell."""
    result = server.query(f'SELECT "{field}" FROM "air_quality"', database, auth)
    series = result["results"][0].get("series", [])  # type: ignore[index]
    return series[0]["values"] if series else []


def databases(server: InfluxDB, auth: tuple[str, str] | None = None) -> list[str]:
    result = server.query("SHOW DATABASES", auth=auth)
    return [row[0] for row in result["results"][0]["series"][0]["values"]]  # type: ignore[index]


async def test_database_is_created_on_enter_and_again_when_dropped(influxdb: InfluxDB,
                                                                  influx_url: str) -> None:
    async with InfluxWriter(influx_url) as store:
        assert store.database in databases(influxdb)
        influxdb.query(f'DROP DATABASE "{store.database}"')
        assert await store.write([reading(1)]) == []
    assert stored(influxdb, store.database) == [[T0 + 10**9, 1.0]]


async def test_stopped_server_fails_fast_and_recovers(make_influxdb: Factory) -> None:
    server = make_influxdb()
    async with InfluxWriter(server.url("outage"), deadline_s=1.0) as store:
        assert await store.write([reading(0)]) == []
        await asyncio.to_thread(server.stop)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot reach InfluxDB"):
            await store.write([reading(1)])
        assert time.monotonic() - started < 2.0
        with pytest.raises(StoreUnavailable):
            await store.ping()
        async with InfluxReader(server.url("outage"), deadline_s=1.0) as reader:
            with pytest.raises(StoreUnavailable):
                await reader.latest("air_quality")
        await asyncio.to_thread(server.start)
        assert await store.write([reading(1)]) == []
        await store.ping()
    assert stored(server, "outage") == [[T0, 0.0], [T0 + 10**9, 1.0]]


async def test_frozen_server_times_out_within_the_deadline(make_influxdb: Factory) -> None:
    server = make_influxdb()
    assert server.proc is not None
    async with InfluxWriter(server.url("frozen"), deadline_s=1.0) as store:
        server.proc.send_signal(signal.SIGSTOP)  # accepts connections, never answers
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="did not answer"):
                await store.write([reading(1)])
            assert time.monotonic() - started < 2.5
        finally:
            server.proc.send_signal(signal.SIGCONT)
        assert await store.write([reading(1)]) == []
    assert stored(server, "frozen") == [[T0 + 10**9, 1.0]]


async def test_starts_while_influxdb_is_down(make_influxdb: Factory) -> None:
    server = make_influxdb()
    url = server.url("late")
    await asyncio.to_thread(server.stop)
    async with InfluxWriter(url, deadline_s=0.5) as store:  # entering must not fail
        with pytest.raises(StoreUnavailable):
            await store.write([reading(1)])
        await asyncio.to_thread(server.start)
        assert await store.write([reading(1)]) == []  # creates the database first
    assert "late" in databases(server)
    assert stored(server, "late") == [[T0 + 10**9, 1.0]]


async def test_only_the_conflicting_points_are_refused(influxdb: InfluxDB, influx_url: str
                                                       ) -> None:
    # 4 points a request: the conflicts are bisected within their chunks.
    async with InfluxWriter(influx_url, max_points_per_request=4) as store:
        assert await store.write([reading(0)]) == []  # pm25 is now a float field
        batch = [reading(i) for i in range(1, 11)]
        bad = [reading(3, pm25="high"), reading(8, pm25="low")]
        batch[2], batch[7] = bad
        rejected = await store.write(batch)
    assert [r.point for r in rejected] == bad
    assert all("field type conflict" in r.detail for r in rejected)
    assert [row[0] for row in stored(influxdb, store.database)] == [
        T0 + i * 10**9 for i in range(11) if i not in (3, 8)]


async def test_credentials_in_the_url(make_influxdb: Factory) -> None:
    server = make_influxdb(auth=True)
    user, password = "admin", "s3cr:t @/%'pw"
    literal = password.replace("\\", "\\\\").replace("'", "\\'")
    server.query(f"CREATE USER \"{user}\" WITH PASSWORD '{literal}' WITH ALL PRIVILEGES")
    good = f"influxdb://{user}:{quote(password, safe='')}@127.0.0.1:{server.port}/secured"
    async with InfluxWriter(good) as store, InfluxReader(good) as reader:
        assert await store.write([reading(1)]) == []
        assert [p.fields for p in await reader.latest("air_quality")] == [{"pm25": 1.0}]
    assert stored(server, "secured", auth=(user, password)) == [[T0 + 10**9, 1.0]]

    for url in (good.replace(quote(password, safe=""), "wrong"), server.url("secured")):
        async with InfluxWriter(url, deadline_s=5.0) as store, \
                InfluxReader(url, deadline_s=5.0) as reader:  # entering logs, never fails
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="credentials"):
                await store.write([reading(2)])
            with pytest.raises(StoreUnavailable, match="credentials"):
                await count(reader, "air_quality", "pm25")
            assert time.monotonic() - started < 1.0  # waiting would not fix it: no retries
    assert len(stored(server, "secured", auth=(user, password))) == 1


async def test_raw_influxql_answers_series_in_either_database_and_refusals_are_rejected(
        influxdb: InfluxDB, influx_url: str) -> None:
    other = f"{influx_url.rpartition('/')[2]}_other"
    async with InfluxWriter(influx_url) as store, InfluxReader(influx_url) as reader, \
            InfluxWriter(influxdb.url(other)) as elsewhere:
        assert await store.write([reading(1), reading(2)]) == []
        assert await elsewhere.write([reading(7)]) == []
        [series] = await reader.influxql('SELECT sum("pm25") FROM "air_quality" GROUP BY '
                                         '"pilot"')
        assert series["tags"] == {"pilot": "p1"} and series["values"] == [[0, 3.0]]
        [series] = await reader.influxql('SELECT sum("pm25") FROM "air_quality"', db=other)
        assert series["values"] == [[0, 7.0]]  # the reader's own database holds 3.0
        assert await reader.influxql('SELECT "pm25" FROM "air_quality" WHERE time < 0') == []
        assert await reader.influxql('SELECT * FROM "x"', db=f"{other}_missing") == []
        with pytest.raises(StoreRejected, match="error parsing query"):
            await reader.influxql('SELECT sum("pm25" FROM "air_quality"')
        with pytest.raises(StoreRejected, match="query failed: mixing aggregate"):
            await reader.influxql('SELECT "pm25", sum("pm25") FROM "air_quality"')


CLASSIFIED = [
    (204, "", "WRITTEN"),
    (404, 'database not found: "x"', "NO_DATABASE"),
    (400, 'partial write: field type conflict: input field "timeout" on measurement "m" is '
          "type string, already exists as type float dropped=1", "REFUSED"),
    (400, "unable to parse 'm v=': missing field value", "REFUSED"),
    (400, "partial write: points beyond retention policy dropped=2", "REFUSED"),
    (400, "partial write: max-values-per-tag limit exceeded (100000/100000)", "REFUSED"),
    (413, "Request Entity Too Large", "TOO_LARGE"),
    (500, "timeout", "RETRY"),
    (503, "", "RETRY"),
    (429, "too many requests", "RETRY"),
    (408, "", "RETRY"),
    (500, "write failed: hinted handoff queue not empty", "WRITTEN"),
    (401, "authorization failed", "MISCONFIGURED"),
    (403, "user is not authorized to write to database", "MISCONFIGURED"),
    (404, "404 page not found", "MISCONFIGURED"),
    (400, "retention policy not found: rp", "MISCONFIGURED"),
]


@pytest.mark.parametrize(("status", "error", "kind"), CLASSIFIED)
def test_write_responses_are_classified_like_telegraf(status: int, error: str, kind: str
                                                      ) -> None:
    assert classify_write(status, error).kind.name == kind


def test_a_partial_writes_dropped_count_and_an_html_error_page_are_read() -> None:
    assert dropped_points('partial write: max-values-per-tag limit exceeded (8/5): '
                          'measurement="m" tag="device" value="d1" dropped=50') == (
        'partial write: max-values-per-tag limit exceeded (8/5): measurement="m" '
        'tag="device" value="d1"', 50)
    assert dropped_points("unable to parse 'm v=': missing field value") == (
        "unable to parse 'm v=': missing field value", 0)
    page = httpx.Response(502, headers={"Content-Type": "text/html"}, content=(
        b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1>"
        b"</body></html>"))
    assert error_text(page) == ("an HTML page, not InfluxDB's answer (a proxy in front of "
                                "it?): 502 Bad Gateway")
    untitled = httpx.Response(500, headers={"Content-Type": "text/html; charset=utf-8"},
                              content=b"<p>Upstream\n  <b>gone</b></p>")
    assert error_text(untitled).endswith(": Upstream gone")


def test_retry_after_is_seconds_or_an_http_date() -> None:
    assert classify_write(429, "", "2").retry_after_s == 2.0
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", now_s=1445412470.0) == 10.0
    assert retry_after_s("0.25") == 0.25
    assert retry_after_s("soon") is None
    assert retry_after_s(None) is None


BACKOFF = dict(base_s=0.05, cap_s=1.0)
# (attempt, remaining s, Retry-After, jitter) -> the wait, or None: give up.
DELAYS = [
    (0, 5.0, None, 0.0, 0.05),  # [base, 2 base] for the first retry
    (0, 5.0, None, 0.5, 0.075),
    (1, 5.0, None, 0.0, 0.1),  # doubling
    (2, 5.0, None, 0.99, 0.2 + 0.99 * 0.2),
    (4, 5.0, None, 0.0, 0.5),  # capped: [cap/2, cap], still jittered
    (4, 5.0, None, 1.0, 1.0),
    (50, 5.0, None, 0.5, 0.75),
    (10_000, 5.0, None, 0.5, 0.75),  # no overflow after many attempts
    (0, 5.0, 2.0, 0.0, 2.0),  # Retry-After takes precedence...
    (3, 5.0, 2.0, 1.0, 2.05),  # ...plus up to one base of jitter
    (0, 5.0, 0.0, 0.0, 0.0),  # "retry now" (a created database)
    (0, 1.0, 2.0, 0.0, None),  # Retry-After beyond the deadline: give up now
    (4, 0.6, None, 0.5, None),  # the wait would end past the deadline
    (0, 0.0, None, 0.0, None),  # no time left
]


@pytest.mark.parametrize(("attempt", "remaining", "retry_after", "jitter", "want"), DELAYS)
def test_backoff_is_jittered_exponential_within_the_deadline(
        attempt: int, remaining: float, retry_after: float | None, jitter: float,
        want: float | None) -> None:
    got = retry_delay_s(attempt, remaining, retry_after=retry_after, jitter=jitter, **BACKOFF)
    assert got == (None if want is None else pytest.approx(want))
