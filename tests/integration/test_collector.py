"""The collector against real Mosquitto and real stores: what is published is what is stored."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from ingest.stores import open_reader, open_store
from tests.collectors import collector, reading
from tests.mqttclient import publish
from tests.servers import InfluxDB, Mosquitto
from tests.support import eventually, stored_count


@pytest.fixture(params=["sqlite", "influxdb"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str, influx_url: str) -> str:
    return sqlite_url if request.param == "sqlite" else influx_url


async def stored(store_url: str, measurement: str, field: str, pilot: str) -> int:
    return await stored_count(store_url, measurement, field, pilot=pilot)


async def test_every_published_reading_is_stored_once(mosquitto: Mosquitto, store_url: str,
                                                      prefix: str, tmp_path: Path) -> None:
    base = int(time.time() * 1000) - 600_000
    singles = [(f"citypilot/v1/{prefix}/gw-1/aq-{i % 20}/telemetry", reading(base + i, i))
               for i in range(3000)]
    array = orjson.dumps([orjson.loads(reading(base + 5000 + j, j)) for j in range(50)])
    async with collector(mosquitto.url, store_url, tmp_path / "spool") as c:
        await asyncio.to_thread(publish, mosquitto.url,
                                [*singles, (f"citypilot/v1/{prefix}/gw-1/aq-0/telemetry", array)])
        await eventually(lambda: _equals(stored(store_url, "air_quality", "pm25", prefix), 3050),
                         timeout=30)
        # The same readings again (a gateway resending after a reconnect) store nothing new.
        await asyncio.to_thread(publish, mosquitto.url, singles[:500])
        await eventually(lambda: c.stats.received == 3501, timeout=20)
    assert await stored(store_url, "air_quality", "pm25", prefix) == 3050


async def _equals(count: object, expected: int) -> bool:
    got = await count  # type: ignore[misc]
    assert got == expected, f"{got} stored, expected {expected}"
    return True


MALFORMED: list[tuple[str, bytes, str]] = [
    ("telemetry", b"{not json", "bad_json"),
    ("telemetry", b'{"kind": "noise", "values": {"noise_laeq": "loud"}}', "bad_shape"),
    ("telemetry", b'{"kind": "noise", "values": {"noise_laeq": NaN}}', "not_finite"),
    ("telemetry", b'{"kind": "noise", "values": {"x": 1}, "p": "' + b"a" * 300_000 + b'"}',
     "too_large"),
    ("telemetry", b"[" * 2000 + b"]" * 2000, "bad_json"),
    ("telemetry", b'{"kind": "n\xffoise", "values": {"x": 1}}', "bad_encoding"),
    ("telemetry", b'{"ts": 4102444800000, "kind": "noise", "values": {"x": 1}}',
     "future_timestamp"),
    ("telemetry", b'{"kind": "noise x=1,pilot=evil", "values": {"x": 1}}', "bad_name"),
    ("telemetry", b'{"kind": "noise", "values": {"x\\" y=2": 1}}', "bad_name"),
    ("command", b'{"kind": "noise", "values": {"x": 1}}', "unknown_channel"),
]


async def test_malformed_input_becomes_dead_letters_and_the_collector_goes_on(
        mosquitto: Mosquitto, store_url: str, prefix: str, tmp_path: Path) -> None:
    good = f"citypilot/v1/{prefix}/gw-1/noise-1/telemetry"
    now = int(time.time() * 1000)
    messages = []
    for i, (channel, payload, _) in enumerate(MALFORMED):
        messages.append((f"citypilot/v1/{prefix}/gw-1/bad-{i}/{channel}", payload))
        messages.append((good, orjson.dumps({"ts": now - 1000 + i, "kind": "noise",
                                             "values": {"noise_laeq": 50 + i}})))
    async with collector(mosquitto.url, store_url, tmp_path / "spool"):
        await asyncio.to_thread(publish, mosquitto.url, messages)
        await eventually(lambda: _equals(stored(store_url, "noise", "noise_laeq", prefix),
                                         len(MALFORMED)), timeout=20)

        async def letters() -> list[tuple[str, str]]:
            async with open_reader(store_url) as reader:
                rows = await reader.dead_letters(limit=1000)
            mine = sorted((r.topic.split("/")[4], r.reason) for r in rows if prefix in r.topic)
            assert len(mine) == len(MALFORMED), mine
            return mine

        got = await eventually(letters, timeout=20)
    assert got == sorted((f"bad-{i}", reason) for i, (_, _, reason) in enumerate(MALFORMED))


async def test_influxdb_outage_loses_nothing(mosquitto: Mosquitto,
                                             make_influxdb: Callable[..., InfluxDB],
                                             prefix: str, tmp_path: Path) -> None:
    """InfluxDB stopped for 30 s mid-stream and restarted: every reading arrives."""
    influx = make_influxdb()
    url = influx.url("outage")
    base = int(time.time() * 1000) - 3_600_000
    batches = [[(f"citypilot/v1/{prefix}/gw-1/aq-{i % 10}/telemetry", reading(base + k * 1000 + i))
                for i in range(1000)] for k in range(3)]
    async with collector(mosquitto.url, url, tmp_path / "spool", store_timeout_s=1.0) as c:
        await asyncio.to_thread(publish, mosquitto.url, batches[0])
        await eventually(lambda: _equals(stored(url, "air_quality", "pm25", prefix), 1000),
                         timeout=20)
        influx.stop()
        await asyncio.to_thread(publish, mosquitto.url, batches[1])
        await eventually(lambda: c.stats.spooled >= 1000, timeout=20)
        outage_end = time.monotonic() + 30
        await asyncio.sleep(max(0.0, outage_end - time.monotonic()))  # the outage itself
        influx.start()
        await asyncio.to_thread(publish, mosquitto.url, batches[2])
        await eventually(lambda: _equals(stored(url, "air_quality", "pm25", prefix), 3000),
                         timeout=30)
    assert c.stats.spooled >= 1000


async def test_metrics_health_and_readiness(mosquitto: Mosquitto, sqlite_url: str,
                                            prefix: str, tmp_path: Path) -> None:
    from tests.servers import free_port

    port = free_port()
    async with collector(mosquitto.url, sqlite_url, tmp_path / "spool", metrics_port=port):
        await asyncio.to_thread(publish, mosquitto.url, [
            (f"citypilot/v1/{prefix}/gw-1/aq-1/telemetry", reading(int(time.time() * 1000))),
            (f"citypilot/v1/{prefix}/gw-1/aq-1/telemetry", b"nope")])
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            async def metrics() -> str:
                try:
                    text = (await http.get("/metrics")).text
                except httpx.TransportError as exc:  # the server may still be starting
                    raise AssertionError(f"/metrics unreachable: {exc}") from exc
                assert "citypilot_messages_received_total 2.0" in text
                return text

            text = await eventually(metrics, timeout=10)
            assert 'citypilot_messages_rejected_total{reason="bad_json"} 1.0' in text
            assert (await http.get("/healthz")).status_code == 200
            ready = await http.get("/readyz")
            assert ready.status_code == 200 and ready.json()["mqtt_connected"] is True


async def test_a_batch_the_store_rejects_is_dead_lettered_and_the_collector_goes_on(
        mosquitto: Mosquitto, sqlite_url: str, prefix: str, tmp_path: Path) -> None:
    """A real SQLite store that refuses every reading (a trigger: what a constraint added by
    hand would do) rejects whole batches; their points become dead letters with their reason,
    and once the store takes readings again the next ones are stored."""
    topic = f"citypilot/v1/{prefix}/gw-1/aq-1/telemetry"
    base = int(time.time() * 1000) - 60_000
    async with open_store(sqlite_url):
        pass  # the schema, for the trigger
    async with collector(mosquitto.url, sqlite_url, tmp_path / "spool"):
        db = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        try:
            db.execute("CREATE TRIGGER refuse BEFORE INSERT ON points "
                       "WHEN NEW.measurement != 'dead_letter' "
                       "BEGIN SELECT RAISE(ABORT, 'readings refused here'); END")
            await asyncio.to_thread(publish, mosquitto.url,
                                    [(topic, reading(base + i, i)) for i in range(20)])

            async def letters() -> list[str]:
                async with open_reader(sqlite_url) as reader:
                    rows = await reader.dead_letters(reason="store_rejected", limit=100)
                assert len(rows) == 20, rows
                return [r.detail for r in rows]

            details = await eventually(letters, timeout=20)
            assert all("readings refused here" in d for d in details)
            assert await stored(sqlite_url, "air_quality", "pm25", prefix) == 0
            db.execute("DROP TRIGGER refuse")
        finally:
            db.close()
        await asyncio.to_thread(publish, mosquitto.url, [(topic, reading(base + 100, 7))])
        await eventually(lambda: _equals(stored(sqlite_url, "air_quality", "pm25", prefix), 1),
                         timeout=20)
