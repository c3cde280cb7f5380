"""Run a collector for a test: in-process (asyncio task) or as a `citypilot collect`
subprocess that the test can SIGTERM or SIGKILL."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

from citypilot.settings import load
from citypilot.wiring import build_collector
from ingest.collector import Collector


def reading(ts_ms: int, i: int = 0, kind: str = "air_quality") -> bytes:
    """One telemetry message with 5 values, as the benchmarks and tests send it."""
    return orjson.dumps({"ts": ts_ms, "kind": kind, "values": {
        "pm25": 10 + i % 7, "pm10": 20 + i % 5, "no2": 30 + i % 11, "o3": 40 + i % 3,
        "temperature": 15 + i % 13}})


@asynccontextmanager
async def collector(mqtt_url: str, store_url: str, spool_dir: Path, *,
                    client_id: str | None = None, mqtt_protocol: str = "auto",
                    **settings: Any) -> AsyncIterator[Collector]:
    """An in-process collector, subscribed before the block starts; stopped (flushed) after."""
    s = load(None, **{"mqtt_url": mqtt_url, "store_url": store_url, "spool_dir": spool_dir,
                      "mqtt_client_id": client_id or f"c-{uuid.uuid4().hex[:8]}",
                      "metrics_port": 0, **settings})
    c = build_collector(s, mqtt_protocol=mqtt_protocol)
    task = asyncio.create_task(c.run(), name="collector-under-test")
    try:
        await asyncio.wait_for(c.subscriber.wait_connected(15), 20)
        yield c
    finally:
        c.stop()
        await asyncio.wait_for(task, 60)


CHILDREN: list[subprocess.Popen[bytes]] = []  # killed after each test (tests/conftest.py)


def start_process(tmp: Path, mqtt_url: str, store_url: str, *, client_id: str,
                  spool_dir: Path, metrics_port: int = 0, **env: str) -> subprocess.Popen[bytes]:
    """`citypilot collect` as a child process, logging to tmp/collector-<client_id>.log."""
    environ = {**os.environ, "CITYPILOT_MQTT_URL": mqtt_url, "CITYPILOT_STORE_URL": store_url,
               "CITYPILOT_MQTT_CLIENT_ID": client_id, "CITYPILOT_SPOOL_DIR": str(spool_dir),
               "CITYPILOT_METRICS_PORT": str(metrics_port), **env}
    log = open(tmp / f"collector-{client_id}.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "citypilot", "collect"], env=environ,
                            stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
    log.close()
    CHILDREN.append(proc)
    return proc


def terminate(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    proc.send_signal(sig)
    return proc.wait(60)


