"""The scenario: a deterministic fleet and its timeline of messages.

`Scenario(fleet, faults).window(start_ms, end_ms, speedup)` yields every message the fleet sends
with a timestamp in the window, in the order they are due, each with what a correct collector
must make of it. It is pure: the same seed and the same window give the same bytes; time is
passed in, never read. Windows follow each other on one scenario (history, then live), and the
devices carry their state across: meters keep counting, open sessions stay open.

`speedup` 1 means each device's own interval (a history backfill); a live run at a given rate
shrinks every interval by the same factor (`speedup_for(rate)`), so the mix of kinds stays the
same whatever the rate.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterator

from simulators.deployment import STATUS_INTERVAL_S, DeviceInfo, FleetSpec, build
from simulators.faults import FaultPlan, FaultSpec
from simulators.kinds import SensorModel
from simulators.streams import (
    MIN_INTERVAL_MS,
    DeviceState,
    SensorStream,
    ServiceStream,
    StatusStream,
    Stream,
)
from simulators.summary import Planned

log = logging.getLogger(__name__)
_INDEX_BITS = 24  # up to 16 million streams


class Scenario:
    """A fleet, its fault plan, and the message timeline it produces."""

    def __init__(self, fleet: FleetSpec, faults: FaultSpec | None = None) -> None:
        self.fleet, self.faults = fleet, faults or FaultSpec()
        self.streams: list[Stream] = []
        self._infos: list[DeviceInfo] = []
        for unit in build(fleet):
            self._infos.append(unit.info)
            model = unit.model
            ticks_per_status = STATUS_INTERVAL_S / unit.info.interval_s
            if model is None:
                per_tick, ticks_per_status = 1.0, 1.0
            elif isinstance(model, SensorModel):
                per_tick = 1.0 + 1.0 / ticks_per_status
            else:
                per_tick = model.expected_per_tick() + 1.0 / ticks_per_status
            plan = FaultPlan(self.faults, unit.info.on_battery, per_tick, ticks_per_status)
            dev = DeviceState(unit, plan)
            if model is None:
                self.streams.append(StatusStream(dev, unit.info.interval_s))
                continue
            if isinstance(model, SensorModel):
                self.streams.append(SensorStream(dev, model))
            else:
                self.streams.append(ServiceStream(dev, model))
            self.streams.append(StatusStream(dev))
        if len(self.streams) >= 1 << _INDEX_BITS:
            raise ValueError(f"{len(self.streams):,} streams are more than a scenario can "
                             f"schedule ({1 << _INDEX_BITS:,})")

    @property
    def devices(self) -> list[DeviceInfo]:
        """The inventory: gateways and devices, as deployed."""
        return list(self._infos)

    def natural_rate(self, at_ms: int | None = None) -> float:
        """Expected messages per second with every device at its own interval, at the time of
        day of `at_ms` (events follow the rhythms), or on average over a week."""
        total = 0.0
        for s in self.streams:
            per_tick = s.model.expected_per_tick(at_ms) if isinstance(s, ServiceStream) else 1.0
            total += per_tick * 1000.0 / s.base_ms
        return total

    def max_speedup(self) -> float:
        """The largest speedup that keeps every interval at least MIN_INTERVAL_MS."""
        return min(s.base_ms for s in self.streams) / MIN_INTERVAL_MS

    def speedup_for(self, rate: float, at_ms: int | None = None) -> float:
        """The speedup that makes the fleet send `rate` messages/s at the time of day of
        `at_ms` (or on a week's average); rate 0: the largest speedup."""
        top = self.max_speedup()
        if rate <= 0:
            return top
        natural = self.natural_rate(at_ms)
        wanted = rate / natural
        if wanted > top:
            log.warning("a rate of %g msg/s needs intervals under %d ms for this fleet; "
                        "capped at %.0f msg/s (add devices for more)", rate, MIN_INTERVAL_MS,
                        natural * top)
            return top
        return wanted

    def window(self, start_ms: int, end_ms: int, speedup: float = 1.0) -> Iterator[Planned]:
        """Every message due in [start_ms, end_ms), in due order (ties by stream)."""
        if end_ms <= start_ms:
            return
        streams = self.streams
        heap: list[int] = []  # due time and stream index in one int: cheap to compare
        for i, stream in enumerate(streams):
            interval = max(MIN_INTERVAL_MS, round(stream.base_ms / speedup))
            first = stream.begin(start_ms, end_ms, interval)
            if first < end_ms:
                heap.append(first << _INDEX_BITS | i)
        heapq.heapify(heap)
        replace, pop, mask = heapq.heapreplace, heapq.heappop, (1 << _INDEX_BITS) - 1
        while heap:
            key = heap[0]
            ts, stream = key >> _INDEX_BITS, streams[key & mask]
            yield from stream.produce(ts)
            nxt = ts + stream.interval
            if nxt < end_ms:
                replace(heap, nxt << _INDEX_BITS | key & mask)
            else:
                pop(heap)
        for stream in streams:  # messages still held back (out of order) arrive last
            yield from stream.flush()
