"""Simulated pilots written into a real store the way the collector would write them.

The bundled simulators generate the messages of a fleet over a past window (the same bytes
`citypilot simulate --backfill` publishes); each goes through the collector's own decoder,
and what it accepts is stored, what it rejects is stored as a dead letter with its reason.
Only MQTT is skipped: the console reads the store through the API, and weeks of history go in
within seconds. The pilots are registered with their timezones, devices and intervals, as an
operator would load them, so that KPIs use the devices' real reporting intervals.
"""

from __future__ import annotations

import math
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


def placed(registry: Registry, pilot_id: str, centre: tuple[float, float]) -> Registry:
    """The pilot's devices on a spiral around `centre` (lat, lon), about 1 km across, each at
    its own latitude and longitude; its last device (by id) left without coordinates."""
    pilots = []
    for pilot in registry.pilots:
        if pilot.id == pilot_id:
            ordered = sorted(pilot.devices, key=lambda d: d.id)
            devices = []
            for i, device in enumerate(ordered[:-1]):
                radius, angle = 0.0025 * math.sqrt(i + 1), i * 2.39996  # the golden angle
                lat = centre[0] + radius * math.sin(angle)
                lon = centre[1] + radius * math.cos(angle) / math.cos(math.radians(lat))
                devices.append(device.model_copy(update={"lat": round(lat, 6),
                                                         "lon": round(lon, 6)}))
            pilot = pilot.model_copy(update={"devices": (*devices, ordered[-1])})
        pilots.append(pilot)
    return registry.model_copy(update={"pilots": tuple(pilots)})


def registry(scenarios: dict[str, tuple[Scenario, str]]) -> Registry:
    """Each scenario's pilot with its timezone, devices and reporting intervals (as the
    demo registers its fleet)."""
    return fleet_registry((d for pilot_id, (scenario, _) in scenarios.items()
                           for d in scenario.devices if d.pilot == pilot_id),
                          {pilot_id: tz for pilot_id, (_, tz) in scenarios.items()})


FAULTS = FaultSpec(0.02)  # a few dead letters and silent devices, as in any real fleet
