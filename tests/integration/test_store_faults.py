"""A store that misbehaves, not just one that is down (issue 14, fault 2): through a real
Mosquitto and a real collector into a real influxd, every acknowledged message ends up stored
or as a dead letter whose detail names the cause, and the collector goes on.

Real faults from influxd wherever it can be made to produce them (a field type conflict, its
series and tag-value limits, its body size limit, a dropped database, a full cache and WAL);
`tests/faultproxy.py` in front of it for the rest (an HTML 500, a hang, a slow answer).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from ingest.stores import open_reader
from ingest.stores.base import DeadLetter
from tests.collectors import collector, reading
from tests.faultproxy import fault_proxy
from tests.mqttclient import publish
from tests.servers import InfluxDB, Mosquitto, free_port
from tests.support import eventually, stored_count

Factory = Callable[..., InfluxDB]


def readings(prefix: str, n: int, *, devices: range = range(10), start: int = 0
             ) -> list[tuple[str, bytes]]:
    """n air-quality readings (5 fields each) spread over `devices`, a minute ago onwards."""
    base = int(time.time() * 1000) - 60_000
    return [(f"citypilot/v1/{prefix}/gw-1/aq-{devices[i % len(devices)]}/telemetry",
             reading(base + start + i, i)) for i in range(n)]


async def letters(url: str) -> list[DeadLetter]:
    async with open_reader(url) as reader:
        return await reader.dead_letters(reason="store_rejected", limit=100_000)


async def accounted(url: str, prefix: str, published: int, *, lettered: int | None = None
                    ) -> tuple[int, list[DeadLetter]]:
    """Stored readings and dead letters once they add up to what was published (none lost)."""
    stored = await stored_count(url, "air_quality", "pm25", pilot=prefix)
    refused = await letters(url)
    assert stored + len(refused) == published, f"{stored} stored + {len(refused)} dead " \
        f"letters, {published} published"
    assert lettered is None or len(refused) == lettered, f"{len(refused)} dead letters"
    return stored, refused


async def readiness(port: int) -> dict[str, object]:
    async with httpx.AsyncClient() as http:
        try:
            body = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
        except httpx.TransportError as exc:  # still starting
            raise AssertionError(f"/readyz unreachable: {exc}") from exc
    assert isinstance(body, dict)
    return body


async def store_error(port: int, words: str) -> str:
    error = str((await readiness(port))["store_error"])
    assert words in error, error
    return error


# -- through the fault proxy: what influxd cannot be made to do ---------------------------

@pytest.mark.parametrize(("mode", "cause"), [("html500", "an HTML page"),
                                             ("hang", "did not answer")])
async def test_a_broken_proxy_or_a_hung_store_spools_and_everything_arrives(
        mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str, prefix: str,
        tmp_path: Path, mode: str, cause: str) -> None:
    """Every request answered 500 with an HTML page (a load balancer whose InfluxDB is
    gone), or read and never answered: the batches time out or give up at the store timeout,
    are spooled with the cause in /readyz, and are all stored once the store answers."""
    database = influx_url.rpartition("/")[2]
    port = free_port()
    async with fault_proxy(influxdb.port) as proxy, collector(
            mosquitto.url, proxy.url(database), tmp_path / "spool", store_timeout_s=1.0,
            metrics_port=port) as c:
        sent = readings(prefix, 300)
        await asyncio.to_thread(publish, mosquitto.url, sent[:100])
        await eventually(lambda: accounted(influx_url, prefix, 100, lettered=0), timeout=30)
        proxy.set(mode)  # type: ignore[arg-type]
        await asyncio.to_thread(publish, mosquitto.url, sent[100:])
        await eventually(lambda: c.stats.spooled >= 200, timeout=30)
        await eventually(lambda: store_error(port, cause), timeout=10)
        assert proxy.seen[mode] > 0
        proxy.set("pass")
        await eventually(lambda: accounted(influx_url, prefix, 300, lettered=0), timeout=30)
        assert (await readiness(port))["store_ok"] is True


async def test_a_slow_store_hands_over_to_the_spool(
        mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str, prefix: str,
        tmp_path: Path) -> None:
    """Every write answered after 10 s, beyond the store timeout (pings answer at once, so the
    collector keeps trying the store): the spool takes over, every message is acknowledged
    while the store is still slow, and everything is stored once writes are fast again."""
    database = influx_url.rpartition("/")[2]
    async with fault_proxy(influxdb.port) as proxy, collector(
            mosquitto.url, proxy.url(database), tmp_path / "spool", store_timeout_s=1.0,
            batch_max_messages=100) as c:
        proxy.set("slow", paths=("/write",), delay_s=10.0)
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 3000))
        await eventually(lambda: c.stats.received >= 3000, timeout=90)
        await eventually(lambda: c.stats.spooled + c.stats.stored >= 3000, timeout=30)
        assert proxy.seen["slow"] > 0 and proxy.mode == "slow"
        proxy.set("pass")
        await eventually(lambda: accounted(influx_url, prefix, 3000, lettered=0), timeout=60)


# -- real faults of a real influxd --------------------------------------------------------

async def test_a_field_type_conflict_dead_letters_exactly_the_conflicting_points(
        mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str, prefix: str,
        tmp_path: Path) -> None:
    """Telegraf wrote pm25 as an integer into this database before: every air-quality point
    (pm25 a float) is refused and becomes a dead letter naming the conflict; the noise
    readings of the same batches are stored."""
    database = influx_url.rpartition("/")[2]
    influxdb.query(f'CREATE DATABASE "{database}"')
    ts_ns = (int(time.time()) - 120) * 10**9
    async with httpx.AsyncClient() as http:  # what Telegraf wrote: an integer
        r = await http.post(f"{influxdb.http}/write", params={"db": database}, content=(
            f"air_quality,pilot=telegraf,gateway=g,device=d pm25=12i {ts_ns}").encode())
    assert r.status_code == 204, r.text
    now = int(time.time() * 1000) - 60_000
    noise = [(f"citypilot/v1/{prefix}/gw-1/n-{i % 3}/telemetry",
              b'{"ts": %d, "kind": "noise", "values": {"noise_laeq": 55}}' % (now + i))
             for i in range(200)]
    sent = [m for pair in zip(readings(prefix, 200), noise, strict=True) for m in pair]
    async with collector(mosquitto.url, influx_url, tmp_path / "spool"):
        await asyncio.to_thread(publish, mosquitto.url, sent)
        _, refused = await eventually(lambda: accounted(influx_url, prefix, 200, lettered=200),
                                      timeout=60)
        assert await stored_count(influx_url, "noise", "noise_laeq", pilot=prefix) == 200
    assert {d.detail for d in refused} == {
        'partial write: field type conflict: input field "pm25" on measurement "air_quality" '
        "is type float, already exists as type integer"}
    assert all(prefix in d.payload and d.topic == "(store) air_quality" for d in refused)


async def test_max_values_per_tag_dead_letters_the_new_devices_and_stores_the_rest(
        mosquitto: Mosquitto, make_influxdb: Factory, prefix: str, tmp_path: Path) -> None:
    """influxd with max-values-per-tag = 5: five devices are stored; once they exist, the
    readings of ten new devices are dead letters naming the limit, while the five known
    devices' readings in the same batches are still stored."""
    influx = make_influxdb(data={"max-values-per-tag": "5"})
    url = influx.url("limits")
    async with collector(mosquitto.url, url, tmp_path / "spool"):
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 50, devices=range(5)))
        await eventually(lambda: accounted(url, prefix, 50, lettered=0), timeout=30)
        await asyncio.to_thread(publish, mosquitto.url,
                                readings(prefix, 300, devices=range(15), start=1000))
        stored, refused = await eventually(lambda: accounted(url, prefix, 350, lettered=200),
                                           timeout=60)
    assert stored == 150
    assert all(d.detail.startswith("partial write: max-values-per-tag limit exceeded")
               and 'tag="device"' in d.detail for d in refused), refused[0].detail


async def test_max_series_keeps_the_batches_spooled_until_the_limit_is_raised(
        mosquitto: Mosquitto, make_influxdb: Factory, prefix: str, tmp_path: Path) -> None:
    """influxd with max-series-per-database = 6: the new series are refused, and once the
    limit is reached so is the series their dead letters would open. Nothing is dropped:
    refused points are dead letters naming the limit while their series can still be opened,
    then their batches wait in the spool and /readyz names the limit; once the operator raises
    it (a restart with a new config) the spool drains: every reading is stored or a dead
    letter naming the limit."""
    influx = make_influxdb(data={"max-series-per-database": "6"})
    url = influx.url("series")
    port = free_port()
    async with collector(mosquitto.url, url, tmp_path / "spool", store_timeout_s=1.0,
                         metrics_port=port) as c:
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 30, devices=range(3)))
        await eventually(lambda: accounted(url, prefix, 30, lettered=0), timeout=30)
        await asyncio.to_thread(publish, mosquitto.url,
                                readings(prefix, 300, devices=range(20), start=1000))
        await eventually(lambda: store_error(port, "max-series-per-database limit exceeded"),
                         timeout=30)
        # at least: the shared broker also holds retained statuses of earlier tests
        await eventually(lambda: c.stats.received >= 330, timeout=30)
        await eventually(lambda: c.stats.spooled > 0, timeout=30)

        def ids() -> list[int]:
            return [r.id for r in c.durable.spool.peek(1000)]
        # The drain tries the waiting points again and spools them anew: twice over at least.
        newest = max(ids())
        await eventually(lambda: min(ids()) > newest, timeout=30)
        newest = max(ids())
        await eventually(lambda: min(ids()) > newest, timeout=30)
        influx.data["max-series-per-database"] = "0"  # no limit
        await asyncio.to_thread(influx.restart)
        stored, refused = await eventually(lambda: accounted(url, prefix, 330), timeout=60)
        # Points that wait are spooled again at each drain attempt, counted once.
        assert 0 < c.stats.spooled <= c.stats.received, (c.stats.spooled, c.stats.received)
    assert stored > 30
    assert all(d.detail == "partial write: max-series-per-database limit exceeded: (6)"
               for d in refused), refused[0].detail


async def test_a_body_over_max_body_size_is_split_and_stored(
        mosquitto: Mosquitto, make_influxdb: Factory, prefix: str, tmp_path: Path) -> None:
    """influxd with max-body-size = 4000 bytes answers 413 to a batch of 2000 readings (about
    60 KB gzipped): the writer splits it until it passes, nothing is a dead letter."""
    influx = make_influxdb(http={"max-body-size": "4000"})
    url = influx.url("body")
    async with collector(mosquitto.url, url, tmp_path / "spool"):
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 4000))
        await eventually(lambda: accounted(url, prefix, 4000, lettered=0), timeout=60)


async def test_a_database_dropped_while_the_collector_runs_is_created_again(
        mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str, prefix: str,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """DROP DATABASE under a running collector: the next write creates it again (as
    Telegraf does), with a warning; what it held is gone by the operator's hand, everything
    acknowledged after the drop is stored."""
    database = influx_url.rpartition("/")[2]
    async with collector(mosquitto.url, influx_url, tmp_path / "spool"):
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 100))
        await eventually(lambda: accounted(influx_url, prefix, 100, lettered=0), timeout=30)
        influxdb.query(f'DROP DATABASE "{database}"')
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 200, start=1000))
        await eventually(lambda: accounted(influx_url, prefix, 200, lettered=0), timeout=30)
    assert "database not found (dropped while running?)" in caplog.text


async def test_a_full_cache_then_a_restart_with_a_full_wal_loses_nothing(
        mosquitto: Mosquitto, make_influxdb: Factory, prefix: str, tmp_path: Path) -> None:
    """influxd whose cache (and so its WAL) fills, never snapshotted: it answers 500
    `cache-max-memory-size exceeded`; the collector spools with that cause in /readyz. influxd
    is then killed and started again with a cache that snapshots (the operator's fix),
    replaying its full WAL, and every reading is stored."""
    influx = make_influxdb(data={"cache-max-memory-size": "524288",
                                 "cache-snapshot-memory-size": "1073741824",
                                 "cache-snapshot-write-cold-duration": '"1h"'})
    url = influx.url("wal")
    port = free_port()
    async with collector(mosquitto.url, url, tmp_path / "spool", store_timeout_s=1.0,
                         metrics_port=port) as c:
        await asyncio.to_thread(publish, mosquitto.url, readings(prefix, 12_000))
        await eventually(lambda: store_error(port, "cache-max-memory-size exceeded"),
                         timeout=60)
        await eventually(lambda: c.stats.received >= 12_000, timeout=60)
        assert c.stats.spooled > 0
        await asyncio.to_thread(influx.kill)
        assert len(list((influx.workdir / "wal").rglob("*.wal"))) > 0
        influx.data.clear()
        await asyncio.to_thread(influx.start)
        await eventually(lambda: accounted(url, prefix, 12_000, lettered=0), timeout=90)
