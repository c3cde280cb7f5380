"""Air quality and noise: both follow the traffic on the street where the sensor stands.

NO2 and noise rise with traffic at rush hour; ozone builds up in afternoon sunshine and is
titrated by NO2 near traffic; particles add a winter heating peak and are washed out by rain.
Each site has its own exposure factor (a kerbside station sees more than a park).
"""

from __future__ import annotations

import math
import random

from simulators.kinds.base import Drift, SensorModel, Site, clamp


class AirQuality(SensorModel):
    kind = "air_quality"
    base_interval_s = 600.0

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.exposure = rng.uniform(0.5, 1.5)
        self.background = rng.uniform(6.0, 14.0)
        self._no2 = Drift(rng, 3_600.0)
        self._pm = Drift(rng, 6 * 3_600.0)
        self._o3 = Drift(rng, 2 * 3_600.0)

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        env = self.env
        traffic = env.traffic(ts_ms)
        wet = env.rain(ts_ms) > 0.0
        no2 = (self.background + 70.0 * self.exposure * traffic) \
            * (1.0 + 0.15 * self._no2.step(dt_s))
        no2 = clamp(no2, 1.0, 400.0)
        sun = env.daylight(ts_ms)
        warm = clamp((env.temperature(ts_ms) - 5.0) / 25.0, 0.0, 1.2)
        o3 = 25.0 + 95.0 * sun * warm - 0.35 * no2 + 6.0 * self._o3.step(dt_s)
        doy = env.day_of_year(ts_ms)
        winter = max(0.0, math.cos(2 * math.pi * (doy - 15) / 365.2425))
        heating = winter * 10.0 * max(math.exp(-0.5 * ((env.hour(ts_ms) - 8.0) / 1.5) ** 2),
                                      math.exp(-0.5 * ((env.hour(ts_ms) - 20.0) / 2.0) ** 2))
        pm25 = (5.0 + 9.0 * self.exposure * traffic + heating) * (1.0 + 0.25 * self._pm.step(dt_s))
        pm25 = clamp(pm25 * (0.6 if wet else 1.0), 0.5, 300.0)
        pm10 = pm25 * 1.55 + 3.0 + 4.0 * traffic * self.exposure
        return {"pm25": round(pm25, 1), "pm10": round(pm10, 1), "no2": round(no2, 1),
                "o3": round(clamp(o3, 0.0, 300.0), 1)}


class Noise(SensorModel):
    kind = "noise"
    base_interval_s = 300.0

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.exposure = rng.uniform(0.6, 1.4)
        self.floor = rng.uniform(38.0, 46.0)
        self._drift = Drift(rng, 1_800.0)

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        traffic = self.env.traffic(ts_ms)
        laeq = self.floor + 12.0 * math.log10(1.0 + 60.0 * self.exposure * traffic) \
            + 1.5 * self._drift.step(dt_s)
        laeq = clamp(laeq, 30.0, 95.0)
        lamax = laeq + 6.0 + 14.0 * self.rng.random() ** 2
        return {"noise_laeq": round(laeq, 1), "noise_lamax": round(clamp(lamax, 30.0, 120.0), 1)}
