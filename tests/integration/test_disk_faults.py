"""A spool disk that fails, against real Mosquitto, real InfluxDB and `citypilot collect`
processes: the disk full (a small tmpfs filled to the last byte), read-only, or the spool
file cut short. What is counted is what an operator checks: every published reading in
InfluxDB once the disk or the store is back (0 lost, no dead letter), `/readyz` saying why
meanwhile, and a damaged spool costing exactly the records it no longer holds, logged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.spool import Spool
from tests.collectors import reading, start_process, terminate
from tests.disks import SmallDisk, small_disk
from tests.mqttclient import publish
from tests.servers import InfluxDB, Mosquitto, free_port
from tests.support import stored_count, wait_until


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk") as d:
        yield d


def messages(prefix: str, n: int, start: int = 0) -> list[tuple[str, bytes]]:
    base = int(time.time() * 1000) - 3_600_000
    return [(f"citypilot/v1/{prefix}/gw-1/aq-{i % 25}/telemetry", reading(base + i, i))
            for i in range(start, start + n)]


def stored(store_url: str, pilot: str, measurement: str = "air_quality",
           field: str = "pm25") -> int:
    return asyncio.run(stored_count(store_url, measurement, field, pilot=pilot))


def dead_letters(influx: InfluxDB, database: str) -> list[Any]:
    res = influx.query('SELECT "reason", "detail" FROM "dead_letter"', database=database)
    return res["results"][0].get("series", [{}])[0].get("values", [])  # type: ignore[no-any-return]


def get(port: int, path: str) -> httpx.Response:
    try:
        return httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2)
    except httpx.TransportError as exc:  # the collector may still be starting
        raise AssertionError(f"{path} unreachable: {exc}") from exc


def readiness(port: int) -> tuple[int, dict[str, Any]]:
    resp = get(port, "/readyz")
    return resp.status_code, resp.json()


def metric(port: int, name: str) -> float:
    text = get(port, "/metrics").text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def unready_because(port: int, *words: str) -> dict[str, Any]:
    status, body = readiness(port)
    assert status == 503 and body["spool_ok"] is False, body
    assert any(w in body["spool_error"] for w in words), body
    return body


def ready(port: int) -> dict[str, Any]:
    status, body = readiness(port)
    assert status == 200 and body["spool_ok"] is True and body["spool_error"] is None, body
    return body


class Rig:
    """One test's InfluxDB (its own, to stop and start), database, metrics port, client id."""

    def __init__(self, make_influxdb: Callable[..., InfluxDB], name: str, prefix: str) -> None:
        self.influx = make_influxdb()
        self.url, self.database = self.influx.url(name), name
        self.port, self.cid = free_port(), f"{name}-{prefix}"


def log_of(tmp: Path, cid: str) -> str:
    return (tmp / f"collector-{cid}.log").read_text()


def subscribed(tmp: Path, cid: str, times: int = 1) -> bool:
    return log_of(tmp, cid).count("subscribed to") >= times


def test_a_full_disk_stops_acknowledgement_and_loses_nothing(
        mosquitto: Mosquitto, make_influxdb: Callable[..., InfluxDB], disk: SmallDisk,
        prefix: str, tmp_path: Path) -> None:
    rig = Rig(make_influxdb, "full", prefix)
    influx, url, database, port, cid = rig.influx, rig.url, rig.database, rig.port, rig.cid
    env = {"CITYPILOT_STORE_TIMEOUT_S": "1"}

    def collect() -> Any:
        proc = start_process(tmp_path, mosquitto.url, url, client_id=cid,
                             spool_dir=disk.path / "spool", metrics_port=port, **env)
        return proc

    proc = collect()
    wait_until(lambda: subscribed(tmp_path, cid), timeout=20)
    publish(mosquitto.url, messages(prefix, 1000))
    wait_until(lambda: stored(url, prefix) == 1000, timeout=30)
    wait_until(lambda: ready(port), timeout=10)

    influx.stop()
    assert disk.fill() > 0
    publish(mosquitto.url, messages(prefix, 2000, start=1000))  # acked by the broker
    # Neither the store nor the spool takes them: held, unacknowledged, and /readyz says why.
    body = wait_until(lambda: unready_because(port, "full"), timeout=30)
    assert body["store_ok"] is False
    wait_until(lambda: metric(port, "citypilot_messages_withheld") > 0, timeout=10)
    assert metric(port, "citypilot_spool_up") == 0
    assert "spool unusable" in log_of(tmp_path, cid)

    # A kill now loses nothing: what was held was never acknowledged, the broker has it.
    assert terminate(proc, signal.SIGKILL) == -signal.SIGKILL
    proc = collect()
    wait_until(lambda: subscribed(tmp_path, cid, 2), timeout=20)
    wait_until(lambda: unready_because(port, "full", "disk"), timeout=30)
    assert proc.poll() is None, "a full disk is no reason to exit"

    influx.start()  # the store is back, the disk still full: live batches go straight in
    wait_until(lambda: stored(url, prefix) == 3000, timeout=60)
    assert readiness(port)[0] == 503, "the spool still cannot take a write"
    disk.free()
    wait_until(lambda: ready(port), timeout=30)
    assert metric(port, "citypilot_messages_withheld") == 0
    assert terminate(proc) == 0
    assert stored(url, prefix) == 3000
    assert dead_letters(influx, database) == []


def test_a_read_only_disk_holds_acknowledgement_until_it_is_writable_again(
        mosquitto: Mosquitto, make_influxdb: Callable[..., InfluxDB], disk: SmallDisk,
        prefix: str, tmp_path: Path) -> None:
    rig = Rig(make_influxdb, "readonly", prefix)
    influx, url, database, port, cid = rig.influx, rig.url, rig.database, rig.port, rig.cid
    env = {"CITYPILOT_STORE_TIMEOUT_S": "1"}
    spool = disk.path / "spool"

    proc = start_process(tmp_path, mosquitto.url, url, client_id=cid, spool_dir=spool,
                         metrics_port=port, **env)
    wait_until(lambda: subscribed(tmp_path, cid), timeout=20)
    influx.stop()
    publish(mosquitto.url, messages(prefix, 500))  # spooled: the store is down
    wait_until(lambda: metric(port, "citypilot_spool_depth_points") == 500, timeout=30)
    assert terminate(proc) == 0

    disk.read_only()  # as after a reboot that found the disk damaged
    proc = start_process(tmp_path, mosquitto.url, url, client_id=cid, spool_dir=spool,
                         metrics_port=port, **env)
    wait_until(lambda: subscribed(tmp_path, cid, 2), timeout=20)
    wait_until(lambda: unready_because(port, "Read-only", "readonly"), timeout=30)
    publish(mosquitto.url, messages(prefix, 500, start=500))
    wait_until(lambda: metric(port, "citypilot_messages_withheld") > 0, timeout=30)

    influx.start()  # the new readings go straight to the store; the backlog waits on disk
    wait_until(lambda: stored(url, prefix) == 500, timeout=60)
    assert readiness(port)[0] == 503
    disk.writable()  # the spool opens again and drains its backlog
    wait_until(lambda: stored(url, prefix) == 1000, timeout=60)
    wait_until(lambda: ready(port), timeout=10)
    assert proc.poll() is None
    assert terminate(proc) == 0
    assert dead_letters(influx, database) == []


def test_a_spool_file_cut_short_costs_the_records_it_lost_logged_and_no_more(
        mosquitto: Mosquitto, make_influxdb: Callable[..., InfluxDB], prefix: str,
        tmp_path: Path) -> None:
    rig = Rig(make_influxdb, "cut", prefix)
    influx, url, database, port, cid = rig.influx, rig.url, rig.database, rig.port, rig.cid
    spool = tmp_path / "spool"
    env = {"CITYPILOT_STORE_TIMEOUT_S": "1", "CITYPILOT_BATCH_MAX_MESSAGES": "50"}
    influx.stop()
    proc = start_process(tmp_path, mosquitto.url, url, client_id=cid, spool_dir=spool,
                         metrics_port=port, **env)
    wait_until(lambda: subscribed(tmp_path, cid), timeout=20)
    total = 3000
    publish(mosquitto.url, messages(prefix, total))
    wait_until(lambda: metric(port, "citypilot_spool_depth_points") == total, timeout=60)
    assert terminate(proc) == 0  # a clean stop: everything is in spool.db itself

    intact = tmp_path / "intact"
    shutil.copytree(spool, intact)
    with Spool(intact) as copy:
        before = {r.id: r.items for r in copy.peek(10_000)}
    assert sum(before.values()) == total and len(before) > 20
    db = spool / "spool.db"
    os.truncate(db, db.stat().st_size * 6 // 10 + 123)  # the power cut: mid-page, mid-record
    # What the damaged file still holds, read the same way from a copy of it.
    shutil.copytree(spool, tmp_path / "damaged", ignore=shutil.ignore_patterns("*.lock"))
    with Spool(tmp_path / "damaged") as damaged:
        kept = {r.id: r.items for r in damaged.peek(10_000)}
    lost_records = len(before) - len(kept)
    assert 0 < lost_records < len(before)
    assert all(before[i] == n for i, n in kept.items())

    influx.start()
    proc = start_process(tmp_path, mosquitto.url, url, client_id=cid, spool_dir=spool,
                         metrics_port=port, **env)
    wait_until(lambda: stored(url, prefix) == sum(kept.values()), timeout=60)
    wait_until(lambda: ready(port), timeout=10)
    assert metric(port, "citypilot_spool_skipped_records") == lost_records
    assert proc.poll() is None, "a damaged spool is salvaged, not a crash loop"
    assert terminate(proc) == 0
    log = log_of(tmp_path, cid)
    assert f"{len(kept)} records kept, {lost_records} unreadable records skipped" in log
    assert stored(url, prefix) == sum(kept.values())
    assert dead_letters(influx, database) == []


async def test_the_gateway_agent_holds_intake_while_its_spool_disk_is_full(
        mosquitto: Mosquitto, influx_url: str, influxdb: InfluxDB, disk: SmallDisk,
        prefix: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from ingest.gateway import GatewayAgent, GatewayOptions
    from ingest.mqtt import MqttOptions
    from tests.collectors import collector
    from tests.integration.test_gateway import counter_source
    from tests.support import eventually

    caplog.set_level(logging.INFO, "ingest.gateway.agent")
    agent = GatewayAgent(GatewayOptions(
        pilot=prefix, gateway="gw-1", upstream=MqttOptions(mosquitto.url, f"gw-{prefix}"),
        spool_dir=disk.path / "gw-spool", heartbeat_s=0.5, metrics_port=free_port(),
        metrics_host="127.0.0.1"),
        [counter_source(300, 5, 0.02, base=int(time.time() * 1000) - 600_000)])
    readyz = f"http://127.0.0.1:{agent.options.metrics_port}/readyz"
    async with collector(mosquitto.url, influx_url, tmp_path / "spool"):
        run = asyncio.create_task(agent.run())
        await eventually(lambda: agent.spool.directory.joinpath("gateway.db").exists())
        await asyncio.to_thread(disk.fill)
        await eventually(lambda: "spool unusable" in caplog.text, timeout=20)
        assert agent.stats.accepted < 300
        async with httpx.AsyncClient(timeout=5) as http:  # /readyz says why, while it lasts
            answer = await http.get(readyz)
            assert answer.status_code == 503, answer.text
            assert answer.json()["spool_ok"] is False
            assert "No space left" in answer.json()["spool_error"] or \
                "full" in answer.json()["spool_error"], answer.text
        disk.free()  # the disk is back: everything held is spooled, forwarded and stored
        await eventually(lambda: agent.stats.delivered == 300, timeout=60)
        got = await eventually(lambda: _at_least(influx_url, prefix, 300), timeout=60)
        async with httpx.AsyncClient(timeout=5) as http:
            answer = await http.get(readyz)
        agent.stop()
        assert await asyncio.wait_for(run, 30) == 0
    assert got == 300
    assert answer.status_code == 200 and answer.json()["spool_ok"] is True, answer.text
    assert agent.stats.accepted == agent.stats.delivered == 300
    assert agent.stats.dropped == 0
    assert "spool usable again" in caplog.text
    assert dead_letters(influxdb, influx_url.rsplit("/", 1)[1]) == []


async def _at_least(url: str, pilot: str, n: int) -> int:
    got = await stored_count(url, "noise", "noise_laeq", pilot=pilot)
    assert got >= n, got
    return got
