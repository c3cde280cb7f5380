"""A broker that drops: a stock-configured Mosquitto (1,000 queued messages per client)
throws away what a burst brings while the collector is away, and the collector says so —
on /metrics, on /readyz and in a warning naming the setting to change."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.collectors import collector, reading
from tests.mqttclient import publish
from tests.servers import Mosquitto, free_port
from tests.support import eventually, stored_count

SYS_INTERVAL_S = 1


@pytest.fixture(params=["sqlite", "influxdb"])
def store_url(request: pytest.FixtureRequest, sqlite_url: str, influx_url: str) -> str:
    return sqlite_url if request.param == "sqlite" else influx_url


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_what_a_stock_broker_drops_is_counted_and_warned_about(
        make_mosquitto: Callable[..., Mosquitto], store_url: str, prefix: str, tmp_path: Path,
        protocol: str, caplog: pytest.LogCaptureFixture) -> None:
    broker = make_mosquitto(f"sys_interval {SYS_INTERVAL_S}\n", max_queued_messages=1000)
    client_id, spool = f"drops-{prefix}", tmp_path / "spool"
    async with collector(broker.url, store_url, spool, client_id=client_id,
                         mqtt_protocol=protocol):
        pass  # its persistent session stays; the collector is away
    away = time.monotonic()
    base = int(time.time() * 1000) - 600_000
    sent = await asyncio.to_thread(publish, broker.url, [
        (f"citypilot/v1/{prefix}/gw-1/aq-{i % 20}/telemetry", reading(base + i, i))
        for i in range(3000)])

    port = free_port()
    with caplog.at_level(logging.WARNING, logger="ingest.mqtt.drops"):
        async with collector(broker.url, store_url, spool, client_id=client_id,
                             metrics_port=port, mqtt_protocol=protocol) as c:
            drops = c.subscriber.drops
            assert drops is not None

            async def counted() -> tuple[int, int]:
                stored = await stored_count(store_url, "air_quality", "pm25", pilot=prefix)
                # Stored only grows and the count only grows: once it covers what is not
                # stored, it covers every loss.
                assert drops.total is not None and drops.total >= sent - stored > 0, (
                    f"{stored} of {sent} stored, the broker counts {drops.total} dropped")
                return stored, drops.total

            stored, total = await eventually(counted, timeout=30)
            away_s = time.monotonic() - away
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                async def exported() -> float:
                    text = (await http.get("/metrics")).text
                    found = re.search(r'^citypilot_broker_dropped_messages\{broker="'
                                      + re.escape(str(drops.broker)) + r'"\} (\S+)$', text,
                                      re.MULTILINE)
                    assert found, "no citypilot_broker_dropped_messages on /metrics"
                    return float(found.group(1))

                assert await eventually(exported, timeout=10) >= sent - stored
                ready = await http.get("/readyz")
    assert ready.status_code == 200, ready.text  # drops are reported, not unreadiness
    assert ready.json()["broker_dropped_messages"][drops.broker] >= sent - stored
    # The count is the broker's: beyond our readings it holds the `$SYS` notices that our
    # full queue dropped too, about one per sys_interval while the collector was away.
    assert total - (sent - stored) <= away_s / SYS_INTERVAL_S + 3, (total, sent, stored)
    warnings = [r.getMessage() for r in caplog.records if r.name == "ingest.mqtt.drops"]
    assert any("max_queued_messages" in w and str(broker.port) in w for w in warnings), warnings
