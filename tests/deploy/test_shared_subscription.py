"""Scale-out on the shipped broker: two `citypilot collect` processes in one shared-subscription
group split the stream; one is SIGKILLed mid-stream and restarted: nothing lost, nothing
duplicated in InfluxDB, and both did work."""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.collectors import reading, start_process, terminate
from tests.deploy.brokerclient import close, connect, publish
from tests.deploy.conftest import Broker
from tests.servers import InfluxDB, free_port
from tests.support import wait_until

TOTAL = 10_000


def stored(influxdb: InfluxDB, database: str, pilot: str) -> int:
    raw = influxdb.query(f"SELECT count(\"pm25\") FROM \"air_quality\" WHERE \"pilot\" = "
                         f"'{pilot}'", database=database)
    series = raw["results"][0].get("series")  # type: ignore[index]
    return int(series[0]["values"][0][1]) if series else 0


def ready(port: int) -> bool:
    """/readyz: subscribed to the broker, store reachable."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def received(port: int) -> float:
    """The collector's own count of MQTT messages, from its /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    found = re.search(r"^citypilot_messages_received_total (\S+)$", text, re.M)
    assert found, "no citypilot_messages_received_total on /metrics"
    return float(found.group(1))


def test_two_collectors_share_the_load_and_a_sigkill_loses_nothing(
        broker: Broker, gateway: Callable[[str, str], str], influxdb: InfluxDB,
        influx_url: str, prefix: str, tmp_path: Path) -> None:
    database = influx_url.rsplit("/", 1)[1]
    gw_url = gateway(prefix, "gw1")
    ports = {"a": free_port(), "b": free_port()}

    def start(name: str) -> Callable[[], bool]:
        procs[name] = start_process(
            tmp_path, broker.collector_url(), influx_url, client_id=f"{prefix}-{name}",
            spool_dir=tmp_path / f"spool-{name}", metrics_port=ports[name],
            CITYPILOT_MQTT_SHARE_GROUP=f"g{prefix}")
        return lambda: ready(ports[name])

    procs: dict[str, subprocess.Popen[bytes]] = {}
    client = connect(gw_url, ca_file=broker.ca_file)
    try:
        for name in ("a", "b"):
            wait_until(start(name), timeout=30)
        base = int(time.time() * 1000) - 3_600_000
        stream = [(f"citypilot/v1/{prefix}/gw1/aq-{i % 25}/telemetry", reading(base + i, i))
                  for i in range(TOTAL)]
        sender = threading.Thread(target=publish, args=(client, stream, 120))
        sender.start()
        # Both do work: each has taken a share of the stream before one of them is killed.
        wait_until(lambda: received(ports["a"]) > 500 and received(ports["b"]) > 500,
                   timeout=60)
        assert terminate(procs["a"], signal.SIGKILL) == -signal.SIGKILL
        at_kill = stored(influxdb, database, prefix)
        sender.join(120)
        wait_until(start("a"), timeout=30)  # same client id and spool: its session waits
        wait_until(lambda: stored(influxdb, database, prefix) == TOTAL, timeout=60)
    finally:
        close(client)
        for proc in procs.values():
            terminate(proc)
    assert at_kill < TOTAL, "the kill came after the stream had been stored"
    assert stored(influxdb, database, prefix) == TOTAL
