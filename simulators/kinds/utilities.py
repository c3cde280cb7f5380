"""Street lighting, waste bins, water and energy meters: the city's utilities.

Lights switch on at dusk and dim after midnight, so their energy follows the season's nights.
Bins fill with the day's activity and are emptied on collection mornings (a full bin stays at
1: the sensor measures the lid, not the pile). Meters are cumulative and never run backwards.
"""

from __future__ import annotations

import random

from simulators.environment import mean
from simulators.kinds.base import Drift, SensorModel, Site, clamp

_COLLECTION_DAYS = (0, 3, 5)  # Monday, Thursday, Saturday, early morning


class Lighting(SensorModel):
    kind = "lighting"
    base_interval_s = 900.0

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.luminaires = rng.randint(8, 60)
        self.watts = rng.choice((36.0, 54.0, 72.0, 110.0))

    @property
    def capacity(self) -> int:
        return self.luminaires

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        env = self.env
        hour = env.hour(ts_ms)
        if env.daylight(ts_ms) > 0.04:
            dimming = 0.0
        elif 0.5 <= hour < 5.5:
            dimming = 0.5  # the quiet hours
        else:
            dimming = 1.0
        power = self.luminaires * (self.watts * dimming * (0.97 + 0.06 * self.rng.random()) + 0.4)
        return {"dimming": dimming, "power": round(power, 1),
                "energy": round(power * dt_s / 3_600.0, 2)}


class Waste(SensorModel):
    kind = "waste"
    base_interval_s = 3_600.0
    on_battery = True

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.fill = rng.uniform(0.05, 0.5)
        self.per_day = rng.uniform(0.25, 0.55)  # share of the bin filled on an average day
        self._last_day = -1

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        env = self.env
        day = (ts_ms + env.offset_ms) // 86_400_000
        if day != self._last_day and env.weekday(ts_ms) in _COLLECTION_DAYS \
                and env.hour(ts_ms) >= 6.0:
            self._last_day = day
            self.fill = self.rng.uniform(0.0, 0.04)  # emptied; some litter stays
        rate = self.per_day * env.level("waste", ts_ms) / mean("waste")
        self.fill = clamp(self.fill + rate * dt_s / 86_400.0 * self.rng.uniform(0.7, 1.3),
                          0.0, 1.0)
        return {"fill_level": round(self.fill, 3)}


class WaterMeter(SensorModel):
    kind = "water_meter"
    base_interval_s = 900.0
    on_battery = True

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.households = rng.randint(4, 120)
        self.volume = rng.uniform(1_000.0, 60_000.0)
        self._drift = Drift(rng, 3_600.0)

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        # about 0.5 m³ per household per day, shaped by the day's rhythm
        flow = self.households * 0.045 * self.env.level("water", ts_ms) \
            * (1.0 + 0.15 * self._drift.step(dt_s))
        flow = max(flow, 0.0)
        self.volume += flow * dt_s / 3_600.0
        return {"flow": round(flow, 3), "water_volume": round(self.volume, 3)}


class EnergyMeter(SensorModel):
    kind = "energy_meter"
    base_interval_s = 900.0

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.base_w = rng.uniform(2_000.0, 15_000.0)  # a school, a library, a town-hall wing
        self.total = rng.uniform(10_000.0, 900_000.0)
        self._drift = Drift(rng, 1_800.0)

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        env = self.env
        cooling = max(0.0, env.temperature(ts_ms) - 24.0) * 0.06
        heating = max(0.0, 14.0 - env.temperature(ts_ms)) * 0.04
        office = env.level("office", ts_ms)
        power = self.base_w * (0.25 + office * (1.0 + cooling + heating)) \
            * (1.0 + 0.05 * self._drift.step(dt_s))
        power = max(power, 0.0)
        self.total += power * dt_s / 3_600_000.0
        return {"power": round(power, 1), "energy_total": round(self.total, 3)}
