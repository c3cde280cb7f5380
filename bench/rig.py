"""The benchmark's servers: a private Mosquitto and InfluxDB in a temp dir, from the same
process classes the integration tests use (`tests/servers.py`), plus the few direct calls the
benchmark makes to them (wait for a client in the broker log, count points, CPU times).

The broker logs subscriptions (`log_type subscribe`), so the benchmark can see when a C
subscriber is in place without a sleep. InfluxDB is queried over plain HTTP, as a user would.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from tests.servers import InfluxDB, Mosquitto, find_binary

log = logging.getLogger(__name__)

PILOT = "bench"
MEASUREMENT = "air_quality"
FIELD = "pm25"


class BenchError(RuntimeError):
    """The benchmark could not produce a figure; the message says why."""


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a live process, all its threads (0 when it is gone)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14, 15)


def machine_busy_seconds() -> float:
    """CPU seconds all CPUs of the machine spent busy (not idle, not waiting for I/O) since
    boot: the whole machine, so a window of it shows what other processes took too."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    guest = sum(values[8:10]) if len(values) > 9 else 0  # already counted in user and nice
    return (sum(values) - idle - guest) / _TICKS


def machine_busy_cores(sample_s: float) -> float:
    """How many CPUs the machine kept busy, on average, over the next `sample_s` seconds."""
    start = machine_busy_seconds()
    time.sleep(sample_s)
    return (machine_busy_seconds() - start) / sample_s


class Rig:
    """Mosquitto and InfluxDB for one benchmark run; a context manager that stops both."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for name, package in (("mosquitto_pub", "mosquitto-clients"),
                              ("mosquitto_sub", "mosquitto-clients")):
            find_binary(name, package)
        self.mosquitto = Mosquitto(root / "mosquitto", "log_type subscribe\n")
        self.influx = InfluxDB(root / "influxdb")
        self.http = httpx.Client(base_url=self.influx.http, timeout=30, trust_env=False)
        self.retired_influx_cpu_s = 0.0  # of influxd processes stopped by stop_influx()

    def __enter__(self) -> Self:
        self.mosquitto.start()
        self.influx.start()
        log.info("mosquitto on :%d, influxd on :%d, in %s", self.mosquitto.port,
                 self.influx.port, self.root)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.http.close()
        self.influx.stop()
        self.mosquitto.stop()

    # -- broker --------------------------------------------------------------------------
    @property
    def mqtt_host_port(self) -> list[str]:
        return ["-h", "127.0.0.1", "-p", str(self.mosquitto.port)]

    def wait_broker_log(self, needles: list[str], timeout_s: float = 15.0) -> None:
        """Poll the broker log until every needle appears (a client connected, subscribed)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            text = self.mosquitto.log_path.read_text(errors="replace")
            if all(n in text for n in needles):
                return
            time.sleep(0.02)
        missing = [n for n in needles if n not in self.mosquitto.log_path.read_text()]
        raise BenchError(f"broker log never showed {missing}:\n{self.mosquitto.log_tail(20)}")

    # -- InfluxDB ------------------------------------------------------------------------
    def store_url(self, database: str) -> str:
        return self.influx.url(database)

    def query(self, q: str, database: str | None = None) -> dict[str, Any]:
        params = {"q": q, "epoch": "ns", **({"db": database} if database else {})}
        r = self.http.post("/query", params=params)
        r.raise_for_status()
        body: dict[str, Any] = r.json()
        return body

    def create_database(self, database: str) -> None:
        self.query(f'CREATE DATABASE "{database}"')

    def count(self, database: str, where: str = "") -> int | None:
        """Points of the benchmark's measurement, or None while InfluxDB does not answer."""
        q = f'SELECT count("{FIELD}") FROM "{MEASUREMENT}"' + (f" WHERE {where}" if where else "")
        try:
            result = self.query(q, database)["results"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            return None
        series = result.get("series") or []
        return int(series[0]["values"][0][1]) if series else 0

    def times(self, database: str, where: str) -> list[int] | None:
        """Timestamps (ns) of the points matching `where`, or None while InfluxDB is away."""
        q = f'SELECT "{FIELD}" FROM "{MEASUREMENT}" WHERE {where}'
        try:
            result = self.query(q, database)["results"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            return None
        series = result.get("series") or []
        return [int(row[0]) for row in series[0]["values"]] if series else []

    def stop_influx(self) -> None:
        """Stop InfluxDB (for an outage), keeping its CPU time for the CPU accounting."""
        self.retired_influx_cpu_s += cpu_seconds(self.server_pids()["influxd"])
        self.influx.stop()

    def influx_cpu_s(self) -> float:
        """CPU seconds of every influxd this rig ran, the current one included."""
        return self.retired_influx_cpu_s + cpu_seconds(self.server_pids()["influxd"])

    def server_pids(self) -> dict[str, int | None]:
        def pid(p: Mosquitto | InfluxDB) -> int | None:
            return p.proc.pid if p.proc is not None and p.running else None
        return {"mosquitto": pid(self.mosquitto), "influxd": pid(self.influx)}
