"""The collector as a process: SIGKILL, SIGTERM and a broker restart lose nothing."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.collectors import collector, reading, start_process, terminate
from tests.mqttclient import PahoPublisher, publish
from tests.servers import InfluxDB, Mosquitto
from tests.support import stored_count, wait_until


def count(store_url: str, pilot: str) -> int:
    async def run() -> int:
        return await stored_count(store_url, "air_quality", "pm25", pilot=pilot)
    return asyncio.run(run())


def messages(prefix: str, n: int, start: int = 0) -> list[tuple[str, bytes]]:
    base = int(time.time() * 1000) - 3_600_000
    return [(f"citypilot/v1/{prefix}/gw-1/aq-{i % 25}/telemetry", reading(base + i, i))
            for i in range(start, start + n)]


def test_sigkill_mid_stream_loses_nothing_and_doubles_nothing(
        mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str, prefix: str,
        tmp_path: Path) -> None:
    spool, cid = tmp_path / "spool", f"kill-{prefix}"
    proc = start_process(tmp_path, mosquitto.url, influx_url, client_id=cid, spool_dir=spool)
    wait_until(lambda: _subscribed(mosquitto, tmp_path, cid), timeout=20)
    total = 20_000
    sender = threading.Thread(target=publish, args=(mosquitto.url, messages(prefix, total)))
    sender.start()
    wait_until(lambda: count(influx_url, prefix) >= 2000, timeout=60)
    assert terminate(proc, signal.SIGKILL) == -signal.SIGKILL
    killed_at = count(influx_url, prefix)
    sender.join(120)
    # Same client id and spool: the broker kept the session's queue; the stale lock is gone.
    proc = start_process(tmp_path, mosquitto.url, influx_url, client_id=cid, spool_dir=spool)
    try:
        wait_until(lambda: count(influx_url, prefix) == total, timeout=90)
    finally:
        assert terminate(proc) == 0
    assert killed_at < total, "the kill came too late to test anything"
    assert count(influx_url, prefix) == total
    raw = influxdb.query('SELECT count("pm25") FROM "air_quality" WHERE "pilot" = '
                         f"'{prefix}'", database=influx_url.rsplit("/", 1)[1])
    assert raw["results"][0]["series"][0]["values"][0][1] == total  # type: ignore[index]


def _subscribed(mosquitto: Mosquitto, tmp: Path, cid: str) -> bool:
    return "subscribed to" in (tmp / f"collector-{cid}.log").read_text()


def test_sigterm_flushes_and_exits_cleanly(mosquitto: Mosquitto, sqlite_url: str,
                                           prefix: str, tmp_path: Path) -> None:
    spool, cid = tmp_path / "spool", f"term-{prefix}"
    proc = start_process(tmp_path, mosquitto.url, sqlite_url, client_id=cid, spool_dir=spool)
    wait_until(lambda: _subscribed(mosquitto, tmp_path, cid), timeout=20)
    publish(mosquitto.url, messages(prefix, 5000))
    assert terminate(proc, signal.SIGTERM) == 0
    log = (tmp_path / f"collector-{cid}.log").read_text()
    assert "collector stopped" in log
    proc = start_process(tmp_path, mosquitto.url, sqlite_url, client_id=cid, spool_dir=spool)
    try:
        wait_until(lambda: count(sqlite_url, prefix) == 5000, timeout=60)
    finally:
        terminate(proc)


async def test_broker_restart_mid_stream_loses_nothing_for_qos1_publishers(
        make_mosquitto: Callable[..., Mosquitto], influx_url: str, prefix: str,
        tmp_path: Path) -> None:
    broker = make_mosquitto()
    pub = PahoPublisher(broker.url, f"gw-{prefix}")
    batch = messages(prefix, 6000)
    async with collector(broker.url, influx_url, tmp_path / "spool",
                         client_id=f"col-{prefix}"):
        def stream() -> None:  # a gateway sending steadily, through the restart
            for i, (topic, payload) in enumerate(batch):
                pub.send(topic, payload)
                if i % 200 == 199:
                    time.sleep(0.05)

        sender = threading.Thread(target=stream)
        sender.start()
        await asyncio.to_thread(wait_until, lambda: len(pub.acked) >= 1500, 30)
        sent_before = len(pub.infos)
        broker.restart()  # persistence on: sessions and queued messages survive
        await asyncio.to_thread(sender.join, 60)
        assert sent_before < len(batch), "the restart came after the stream had ended"
        await asyncio.to_thread(pub.wait_all, 60)

        async def all_stored() -> bool:
            got = await stored_count(influx_url, "air_quality", "pm25", pilot=prefix)
            assert got == 6000, f"{got} of 6000 stored"
            return True

        from tests.support import eventually
        await eventually(all_stored, timeout=60)
    pub.close()
