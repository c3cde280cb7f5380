"""The demo's backfill goes straight to the store through the collector's decoders: what it
stores is exactly what the same history stores when it is published over a real broker.

The same pinned simulation (seed, start, faults: malformed messages, duplicates, dropouts)
runs twice: once published to Mosquitto and collected, once handed to `Backfill`. Both stores
must hold the same points and the same dead letters, all but the times that depend on when
the collector received them (`ingest_delay_s`, a dead letter's time).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections import Counter
from pathlib import Path

from citypilot.demo import Backfill
from citypilot.status import History
from simulators.runner import SimulateOptions, run_async
from simulators.summary import Summary
from tests.collectors import collector
from tests.servers import Mosquitto
from tests.support import eventually

Row = tuple[object, ...]


def contents(db: Path) -> tuple[Counter[Row], Counter[Row]]:
    """(points but their ingest delay, dead letters but their time), as multisets."""
    with sqlite3.connect(db) as conn:
        points = conn.execute(
            "SELECT measurement, pilot, gateway, device, service, type, ts, field, num, str "
            "FROM points WHERE measurement != 'dead_letter' AND field != 'ingest_delay_s'")
        fields = conn.execute("SELECT ts, reason, field, str FROM points "
                              "WHERE measurement = 'dead_letter' ORDER BY ts, field")
        letters: dict[tuple[int, str], list[str]] = {}
        for ts, reason, _, text in fields.fetchall():  # detail, payload, topic
            letters.setdefault((ts, reason), []).append(text)
        return Counter(points.fetchall()), Counter(
            (reason, *texts) for (_, reason), texts in letters.items())


async def test_the_backfill_stores_what_the_broker_would_have_delivered(
        mosquitto: Mosquitto, prefix: str, tmp_path: Path) -> None:
    options = SimulateOptions(pilots=1, gateways=2, devices=7, rate=20, duration_s=0.0,
                              faults=0.2, seed=11, mqtt_url=mosquitto.url,
                              backfill_s=12 * 3600, pilot_prefix=prefix,
                              start_ms=time.time_ns() // 1_000_000)
    over_mqtt, direct = tmp_path / "mqtt.db", tmp_path / "direct.db"

    async with collector(mosquitto.url, f"sqlite:///{over_mqtt}", tmp_path / "s1") as c:
        published: Summary = await run_async(options)
        # Until the collector has taken every message (leaving the block flushes them).
        await eventually(lambda: c.stats.received >= published.published, timeout=30)
    async with collector(mosquitto.url, f"sqlite:///{direct}", tmp_path / "s2") as c:
        history = History(span_s=options.backfill_s, began=time.monotonic())
        backfilled = await run_async(options, history=Backfill(
            c, history, asyncio.get_running_loop()))
        await eventually(lambda: history.stored_s is not None)

    assert published.malformed > 0 and published.duplicates > 0 and published.dropped > 0
    assert backfilled.messages == published.messages and backfilled.acked == 0
    assert history.first_ms is not None and history.last_ms is not None
    assert history.last_ms - history.first_ms > 11 * 3600 * 1000
    points, letters = contents(direct)
    mqtt_points, mqtt_letters = contents(over_mqtt)
    assert points == mqtt_points and set(letters) == set(mqtt_letters)
    # One dead letter per malformed message (over a broker, two identical ones received in
    # the same millisecond are one: only the direct side's count is exact).
    assert sum(letters.values()) == published.malformed
    assert len(points) > 1_000
