"""Rollup lag under live ingest (part of `python -m bench.kpi_bench`; not a test).

A real `citypilot collect` takes a paced load (C publishers, `--rate` msg/s) while a real
`citypilot rollup` worker runs beside it, a pass every `--interval-s`. About every
`PROBE_EVERY_S` (random gaps, so probes meet the passes at every phase) a
*late* reading — its timestamp two hours back, in an hour the worker has already rolled up — is
published on a device of its own; the probe's lag is the time from its publish until the
rollup database holds it (polled every 0.5 s). That is the figure a user cares about: how long
a late write takes to show in rollup-read KPIs. Beside it: the worker's own
`citypilot_rollup_lag_seconds` (time since its last pass) sampled each second, and its CPU
share (CPU seconds of the worker process over wall time, and over the collector's).
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.ceilings import split_lines
from bench.load import CPublishers, reading, topic
from bench.measure import CpuWindow, percentile
from bench.rig import MEASUREMENT, BenchError, Rig, cpu_seconds
from bench.subject import Collector, read_metrics
from ingest.stores.naming import rollup_database
from tests.servers import free_port

log = logging.getLogger(__name__)
PROBE_EVERY_S = 10.0
PROBE_AGE_S = 2 * 3600
DATABASE = "bench_lag"


@dataclass
class Probes:
    """Late readings published on their own connection, and when each showed in rollups."""

    rig: Rig
    published: dict[str, float] = field(default_factory=dict)  # device -> publish wall time
    seen: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-late")
        self.client.connect("127.0.0.1", self.rig.mosquitto.port, keepalive=30)
        self.client.loop_start()

    def publish(self, n: int) -> None:
        device = f"late{n}"
        ts_ms = int((time.time() - PROBE_AGE_S) * 1000)
        self.published[device] = time.time()
        self.client.publish(topic(device, gateway="gw-late"), orjson.dumps(reading(ts_ms)),
                            qos=1)

    def poll(self) -> None:
        waiting = [d for d in self.published if d not in self.seen]
        if not waiting:
            return
        names = "|".join(waiting)
        q = (f'SELECT sum("pm25__count") FROM "{MEASUREMENT}" WHERE device =~ /^({names})$/ '
             'GROUP BY device')
        try:
            result = self.rig.query(q, rollup_database(DATABASE))["results"][0]
        except (httpx.HTTPError, KeyError, IndexError, ValueError):
            return
        now = time.time()
        for series in result.get("series") or []:
            self.seen.setdefault(series["tags"]["device"], now)

    def lags(self) -> list[float]:
        return [self.seen[d] - t for d, t in self.published.items() if d in self.seen]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Worker:
    """`citypilot rollup` as a child process with /metrics on; SIGTERMed on exit."""

    def __init__(self, rig: Rig, interval_s: float) -> None:
        self.workdir = rig.root / "rollup-worker"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        env = {**os.environ, "CITYPILOT_STORE_URL": rig.store_url(DATABASE),
               "CITYPILOT_CATALOG_URL": f"sqlite:///{self.workdir / 'catalog.db'}"}
        env.pop("CITYPILOT_CONFIG", None)
        self.log = (self.workdir / "rollup.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "citypilot", "rollup", "--interval-s", str(interval_s),
             "--metrics-port", str(self.port)], env=env, stdout=self.log,
            stderr=subprocess.STDOUT, cwd=self.workdir)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5,
                                 trust_env=False)

    def lag_s(self) -> float | None:
        if self.proc.poll() is not None:
            raise BenchError(f"rollup worker exited with {self.proc.returncode}")
        return read_metrics(self.http).get("citypilot_rollup_lag_seconds")

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def measure_lag(rig: Rig, rate: float, seconds: float, interval_s: float) -> dict[str, Any]:
    """Paced live ingest at `rate` msg/s for `seconds` with a worker at `interval_s`."""
    rig.create_database(DATABASE)
    rig.create_database(rollup_database(DATABASE))
    lines = split_lines(int(rate * seconds), 4)
    total = sum(len(chunk) for chunk in lines)
    devices = [topic(f"lag-dev{i}") for i in range(4)]
    worker = Worker(rig, interval_s)
    probes = Probes(rig)
    reported: list[float] = []
    rng = random.Random(7)
    try:
        with Collector(rig, "lag", DATABASE) as collector, \
                CPublishers(rig, devices, "bench-lag-pub") as pubs:
            cpu = CpuWindow(rig, [collector], pubs.pids)
            cpu.start()
            worker_cpu0, t0 = cpu_seconds(worker.proc.pid), time.time()
            feeder = threading.Thread(target=pubs.feed_paced, args=(lines, rate, t0),
                                      daemon=True)
            feeder.start()
            n, next_probe = 0, t0
            while feeder.is_alive():
                if time.time() >= next_probe:
                    probes.publish(n)
                    # Random gaps, so that probes meet the worker's passes at every phase.
                    n, next_probe = n + 1, time.time() + rng.uniform(0.5, 1.5) * PROBE_EVERY_S
                probes.poll()
                lag = worker.lag_s()
                if lag is not None:
                    reported.append(lag)
                time.sleep(0.5)
            published_s = time.time() - t0
            deadline = time.time() + 3 * interval_s + 60
            while len(probes.seen) < len(probes.published) and time.time() < deadline:
                probes.poll()
                time.sleep(0.5)
            wall = time.time() - t0
            worker_cpu = cpu_seconds(worker.proc.pid) - worker_cpu0
            used = cpu.stop()
    finally:
        probes.close()
        worker.stop()
    lags = probes.lags()
    return {"rate_target": rate, "rate_achieved": total / published_s, "seconds": seconds,
            "interval_s": interval_s, "probes": len(probes.published),
            "probes_seen": len(lags), "probe_lag_p50_s": percentile(lags, 50),
            "probe_lag_max_s": max(lags, default=float("nan")),
            "reported_lag_max_s": max(reported, default=float("nan")),
            "worker_cores": worker_cpu / wall,
            "collector_cores": used["collector"] / used["wall"],
            "worker_share_of_collector": worker_cpu / max(used["collector"], 1e-9)}


def run(root: Path, rate: float, seconds: float, interval_s: float) -> dict[str, Any]:
    with Rig(root) as rig:
        return measure_lag(rig, rate, seconds, interval_s)
