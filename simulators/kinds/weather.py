"""A weather station: the pilot's weather as one station on one roof measures it."""

from __future__ import annotations

import random

from simulators.kinds.base import Drift, SensorModel, Site, clamp


class Weather(SensorModel):
    kind = "weather"
    base_interval_s = 600.0
    on_battery = True  # solar-buffered

    def __init__(self, rng: random.Random, site: Site) -> None:
        super().__init__(rng, site)
        self.bias = rng.uniform(-0.8, 0.8)  # siting: a sunny roof, a shaded mast
        self._temp = Drift(rng, 3_600.0)
        self._pressure = Drift(rng, 2 * 86_400.0)
        self._wind = Drift(rng, 3 * 3_600.0)
        self.windiness = rng.uniform(2.0, 5.0)

    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        env = self.env
        temp = env.temperature(ts_ms) + self.bias + 0.4 * self._temp.step(dt_s)
        rain_mm_h = env.rain(ts_ms)
        humid = 62.0 - 1.3 * (temp - 17.0) + (25.0 if rain_mm_h > 0 else 0.0)
        wind = self.windiness * (1.0 + 0.5 * self._wind.step(dt_s)) + (2.0 if rain_mm_h else 0.0)
        sun = env.daylight(ts_ms)
        pressure = 1_014.0 + 7.0 * self._pressure.step(dt_s) - (4.0 if rain_mm_h > 0 else 0.0)
        lux = sun * (105_000.0 if rain_mm_h == 0 else 18_000.0)
        return {
            "temperature": round(clamp(temp, -20.0, 48.0), 1),
            "humidity": round(clamp(humid, 8.0, 100.0), 1),
            "pressure": round(clamp(pressure, 960.0, 1_050.0), 1),
            "wind_speed": round(clamp(wind, 0.0, 40.0), 1),
            "rain": round(min(rain_mm_h * dt_s / 3_600.0, 400.0), 2),
            "illuminance": round(lux, 0),
        }
