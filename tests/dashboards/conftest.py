"""A real InfluxDB holding simulated data and its rollups, shared by the dashboards' tests.

A short simulated run (one pilot, two gateways, five devices each, two days of backfill, a
few faults for dead letters) goes through a real Mosquitto and a real collector into a fresh
database; then `citypilot rollup --once` rolls up every hour that had ended before it began.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citypilot.cli import app
from simulators.runner import SimulateOptions, run_async
from tests.collectors import collector
from tests.servers import InfluxDB, Mosquitto
from tests.support import eventually

HOUR_MS = 3_600_000


@dataclass(frozen=True, slots=True)
class Simulated:
    url: str  # the store URL
    rolled_until_ms: int  # every hour before this is rolled up


async def _simulate(mqtt_url: str, store_url: str, spool: Path) -> None:
    async with collector(mqtt_url, store_url, spool) as c:
        summary = await run_async(SimulateOptions(
            pilots=1, gateways=2, devices=5, rate=0, duration_s=1.0, backfill_s=2 * 86400,
            faults=0.05, mqtt_url=mqtt_url, pilot_prefix=f"d{uuid.uuid4().hex[:8]}"))
        assert summary.acked == summary.published > 1000

        def received() -> bool:
            got = c.metrics.registry.get_sample_value("citypilot_messages_received_total")
            return (got or 0) >= summary.published

        await eventually(received, timeout=30)


@pytest.fixture(scope="package")
def simulated(influxdb: InfluxDB, mosquitto: Mosquitto,
              tmp_path_factory: pytest.TempPathFactory) -> Simulated:
    url = influxdb.url(f"dash_{uuid.uuid4().hex[:12]}")
    directory = tmp_path_factory.mktemp("dashboards")
    asyncio.run(_simulate(mosquitto.url, url, directory / "spool"))
    began_ms = time.time_ns() // 1_000_000
    result = CliRunner().invoke(app, ["rollup", "--once"], env={
        "CITYPILOT_STORE_URL": url, "CITYPILOT_CATALOG_URL": f"sqlite:///{directory}/c.db"})
    assert result.exit_code == 0, result.stderr
    assert "complete until" in result.stderr
    return Simulated(url, began_ms // HOUR_MS * HOUR_MS)


@pytest.fixture(scope="package")
def store_url(simulated: Simulated) -> str:
    return simulated.url
