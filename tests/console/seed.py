"""Simulated pilots written into a real store the way the collector would write them.

The bundled simulators generate the messages of a fleet over a past window (the same bytes
`citypilot simulate --backfill` publishes); each goes through the collector's own decoder,
and what it accepts is stored, what it rejects is stored as a dead letter with its reason.
Only MQTT is skipped: the console reads the store through the API, and weeks of history go in
within seconds. The pilots are registered with their timezones, devices and intervals, as an
operator would load them, so that KPIs use the devices' real reporting intervals.
"""

from __future__ import annotations

from collections.abc import Iterable

from api.catalog import Registry
from citypilot.demo import fleet_registry
from ingest.decode.native import NativeDecoder
from ingest.model import Point, dead_letter
from ingest.stores import open_store
from simulators.faults import FaultSpec
from simulators.scenario import Scenario

DELIVERY_MS = 1_500  # how long after its timestamp a message reaches the collector
BATCH = 5_000


def points(scenario: Scenario, start_ms: int, end_ms: int) -> Iterable[Point]:
    decoder = NativeDecoder()
    for message in scenario.window(start_ms, end_ms):
        if not message.expect.send:
            continue
        received_ns = (message.at_ms + DELIVERY_MS) * 1_000_000
        decoded = decoder(message.topic, message.payload, received_ns)
        yield from decoded.points
        for rejection in decoded.rejections:
            yield dead_letter(message.topic, rejection, received_ns)


async def seed(store_url: str, windows: Iterable[tuple[Scenario, int, int]]) -> int:
    """Write every window's points; the number of points written."""
    written = 0
    async with open_store(store_url) as store:
        batch: list[Point] = []
        for scenario, start_ms, end_ms in windows:
            for point in points(scenario, start_ms, end_ms):
                batch.append(point)
                if len(batch) >= BATCH:
                    assert await store.write(batch) == []
                    written, batch = written + len(batch), []
        assert await store.write(batch) == []
    return written + len(batch)


def registry(scenarios: dict[str, tuple[Scenario, str]]) -> Registry:
    """Each scenario's pilot with its timezone, devices and reporting intervals (as the
    demo registers its fleet)."""
    return fleet_registry((d for pilot_id, (scenario, _) in scenarios.items()
                           for d in scenario.devices if d.pilot == pilot_id),
                          {pilot_id: tz for pilot_id, (_, tz) in scenarios.items()})


FAULTS = FaultSpec(0.02)  # a few dead letters and silent devices, as in any real fleet
