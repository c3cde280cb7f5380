"""Parking bays and traffic counters.

A parking sensor watches a zone of bays; when the zone has a payment terminal, the paid
sessions the terminal keeps open are cars in those bays, plus a few that did not pay. The
occupancy is whole bays over the capacity: it can reach 1, never exceed it. A traffic counter
counts vehicles on its lanes in each interval and reports their mean speed, which falls as the
road fills.
"""

from __future__ import annotations

import math
import random

from simulators.kinds.base import Drift, SensorModel, Site, clamp, poisson


class Parking(SensorModel):
    kind = "parking"
    base_interval_s = 300.0
    on_battery = True

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.zone = site.zone
        self.popularity = rng.uniform(0.75, 1.05)
        self._drift = Drift(rng, 1_800.0)

    @property
    def capacity(self) -> int:
        return self.zone.capacity

    def occupied(self, ts_ms: int, dt_s: float) -> int:
        """Bays occupied now: paid sessions plus unpaid cars, never more than the capacity."""
        cap = self.zone.capacity
        demand = self.env.level("parking", ts_ms) * self.popularity
        wobble = self._drift.step(dt_s) * math.sqrt(cap) * 0.6
        if self.zone.has_terminal:
            unpaid = max(0, round(cap * 0.1 * demand + wobble * 0.3))
            cars = self.zone.open_sessions + unpaid
        else:
            cars = round(cap * 0.92 * demand + wobble)
        return int(clamp(cars, 0, cap))

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        return {"occupancy": round(self.occupied(ts_ms, dt_s) / self.zone.capacity, 4)}


class Traffic(SensorModel):
    kind = "traffic"
    base_interval_s = 300.0

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.lanes = rng.randint(1, 4)
        self.free_speed = rng.choice((30.0, 50.0, 50.0, 70.0))
        self._drift = Drift(rng, 900.0)

    @property
    def capacity(self) -> int:
        return self.lanes

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        load = self.env.traffic(ts_ms)
        per_hour = self.lanes * 700.0 * load * (1.0 + 0.1 * self._drift.step(dt_s))
        count = poisson(self.rng, max(per_hour, 0.0) * dt_s / 3_600.0)
        speed = self.free_speed * (1.0 - 0.55 * load * load) * (0.93 + 0.14 * self.rng.random())
        return {"vehicle_count": float(count), "speed": round(clamp(speed, 4.0, 130.0), 1)}
