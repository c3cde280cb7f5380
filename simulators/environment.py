"""The world a pilot's devices live in: daily and weekly rhythms, weather, daylight.

Every model reads time through an `Environment`, so that readings that are related in reality
are related here: traffic drives NO2, noise and the traffic counters; parking demand drives the
bay sensors and the payment terminals; rain keeps people off shared bikes and washes particles
out of the air. Rhythms are tables with one value per 15 minutes of the week (Monday 00:00 local
first), so a reading costs an index rather than a dozen `exp()` calls. Weather is a
deterministic hash of (seed, pilot, hour): no state, the same at any call order.

Local time is a fixed UTC offset per pilot, with no daylight-saving switch: a simulator's
simplification. Nothing here reads the wall clock; time is always passed in.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

SLOT_MS = 15 * 60_000
SLOTS_PER_DAY = 96
WEEK_SLOTS = 7 * SLOTS_PER_DAY
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday; Monday is 0
_MASK = (1 << 64) - 1

Profile = tuple[float, ...]


def _bump(hour: float, centre: float, width: float) -> float:
    """A Gaussian bump on the 24-hour circle."""
    d = (hour - centre + 12.0) % 24.0 - 12.0
    return math.exp(-0.5 * (d / width) ** 2)


def _traffic(day: int, hour: float) -> float:
    if day < 5:  # weekdays: two rush hours, a lunchtime shoulder, a later evening on Friday
        evening = 1.05 if day == 4 else 0.9
        return (0.06 + 0.94 * max(_bump(hour, 8.25, 1.1), evening * _bump(hour, 18.0, 1.5))
                + 0.35 * _bump(hour, 13.0, 2.5))
    late = 0.35 if day == 5 else 0.2  # Saturday night out
    return 0.08 + 0.55 * _bump(hour, 12.5, 3.2) + late * _bump(hour, 21.5, 2.0)


def _parking(day: int, hour: float) -> float:
    if day < 5:
        return 0.18 + 0.72 * _bump(hour, 11.0, 2.6) + 0.55 * _bump(hour, 17.0, 2.0)
    if day == 5:
        return 0.15 + 0.8 * _bump(hour, 12.5, 3.2)
    return 0.12 + 0.45 * _bump(hour, 13.0, 3.0)


def _commute(day: int, hour: float) -> float:
    if day < 5:
        return 0.02 + max(_bump(hour, 8.0, 1.0), 0.85 * _bump(hour, 17.75, 1.4)) \
            + 0.3 * _bump(hour, 13.0, 2.0)
    return 0.02 + 0.75 * _bump(hour, 11.5, 3.0)


def _daytime(day: int, hour: float) -> float:
    weekend = 1.3 if day >= 5 else 1.0  # visitors
    return 0.01 + weekend * 0.7 * _bump(hour, 12.0, 3.0) + 0.25 * _bump(hour, 18.0, 2.0)


def _evening(day: int, hour: float) -> float:
    return 0.05 + 0.45 * _bump(hour, 8.5, 1.5) + 0.4 * _bump(hour, 13.0, 2.0) \
        + 0.75 * _bump(hour, 21.0, 2.2)


def _charging(day: int, hour: float) -> float:
    work = 0.7 if day < 5 else 0.3
    return 0.05 + work * _bump(hour, 9.0, 1.8) + 0.45 * _bump(hour, 14.0, 3.0) \
        + 0.6 * _bump(hour, 19.5, 2.0)


def _water(day: int, hour: float) -> float:
    late = 1.0 if day < 5 else 0.6
    return 0.08 + late * _bump(hour, 7.5, 1.2) + 0.55 * _bump(hour, 13.5, 2.0) \
        + 0.8 * _bump(hour, 20.5, 1.8) + (0.4 * _bump(hour, 10.0, 2.0) if day >= 5 else 0.0)


def _office(day: int, hour: float) -> float:
    if day >= 5:
        return 0.15
    return 0.15 + 0.85 * min(1.0, 1.6 * _bump(hour, 13.0, 3.3))


def _waste(day: int, hour: float) -> float:
    weekend = 1.35 if day >= 5 else 1.0
    return weekend * (0.05 + _bump(hour, 13.0, 4.0))


_SHAPES: dict[str, Callable[[int, float], float]] = {
    "traffic": _traffic, "parking": _parking, "commute": _commute, "daytime": _daytime,
    "evening": _evening, "charging": _charging, "water": _water, "office": _office,
    "waste": _waste,
}
PROFILES = frozenset(_SHAPES)


@functools.cache
def profile(name: str) -> Profile:
    """The named rhythm as a week table, scaled so that its peak is 1."""
    shape = _SHAPES[name]
    raw = [shape(s // SLOTS_PER_DAY, (s % SLOTS_PER_DAY) / 4.0) for s in range(WEEK_SLOTS)]
    peak = max(raw)
    return tuple(v / peak for v in raw)


@functools.cache
def mean(name: str) -> float:
    table = profile(name)
    return sum(table) / len(table)


def mix(*parts: int | str) -> int:
    """A stable 64-bit hash of ints and strings (splitmix64 steps; no PYTHONHASHSEED)."""
    h = 0x9E3779B97F4A7C15
    for part in parts:
        if isinstance(part, str):
            for byte in part.encode():
                h = _splitmix(h ^ byte)
        else:
            h = _splitmix(h ^ (part & _MASK))
    return h


def _splitmix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit(*parts: int | str) -> float:
    """A stable pseudo-random number in [0, 1) for the given key."""
    return (mix(*parts) >> 11) / float(1 << 53)


class Environment:
    """One pilot's city: its local time, rhythms, weather and daylight, as functions of time."""

    def __init__(self, seed: int, pilot: str, utc_offset_h: int, latitude: float) -> None:
        self.pilot = pilot
        self.offset_ms = utc_offset_h * HOUR_MS
        self.latitude = latitude
        self._key = mix(seed, pilot)
        self._rain: dict[int, float] = {}
        self._daily: dict[tuple[str, int], float] = {}
        self._tables = {name: profile(name) for name in PROFILES}

    def slot(self, ts_ms: int) -> int:
        """The 15-minute slot of the local week (0 = Monday 00:00-00:15)."""
        return ((ts_ms + self.offset_ms) // SLOT_MS + _EPOCH_WEEKDAY * SLOTS_PER_DAY) % WEEK_SLOTS

    def hour(self, ts_ms: int) -> float:
        return ((ts_ms + self.offset_ms) % DAY_MS) / HOUR_MS

    def weekday(self, ts_ms: int) -> int:
        return ((ts_ms + self.offset_ms) // DAY_MS + _EPOCH_WEEKDAY) % 7

    def day_of_year(self, ts_ms: int) -> float:
        return ((ts_ms + self.offset_ms) / DAY_MS) % 365.2425

    def daily(self, name: str, ts_ms: int) -> float:
        """A stable random number in [0, 1) per local day and name: the day's own luck."""
        key = (name, (ts_ms + self.offset_ms) // DAY_MS)
        value = self._daily.get(key)
        if value is None:
            if len(self._daily) > 8192:
                self._daily.clear()
            value = self._daily[key] = unit(self._key, *key)
        return value

    def level(self, name: str, ts_ms: int) -> float:
        """The rhythm `name` at this time, 0-1, with a day-to-day variation of about ±10 %."""
        slot = ((ts_ms + self.offset_ms) // SLOT_MS + _EPOCH_WEEKDAY * SLOTS_PER_DAY) % WEEK_SLOTS
        return self._tables[name][slot] * (0.9 + 0.2 * self.daily(name, ts_ms))

    def traffic(self, ts_ms: int) -> float:
        return self.level("traffic", ts_ms)

    def rain(self, ts_ms: int) -> float:
        """Rain intensity in mm/h: rainy days are likelier in winter, as on the Mediterranean."""
        hour = (ts_ms + self.offset_ms) // HOUR_MS
        cached = self._rain.get(hour)
        if cached is not None:
            return cached
        if len(self._rain) > 4096:
            self._rain.clear()
        day = hour // 24
        doy = (day % 365.2425) / 365.2425
        wet_season = 0.17 + 0.14 * math.cos(2 * math.pi * (doy - 0.04))
        value = 0.0
        if unit(self._key, "wet", day) < wet_season and unit(self._key, "rain", hour) < 0.45:
            value = round(0.2 + 6.0 * unit(self._key, "mm", hour) ** 2, 2)
        self._rain[hour] = value
        return value

    def temperature(self, ts_ms: int) -> float:
        """Air temperature in °C: a Mediterranean year, a daily swing, a daily anomaly."""
        doy = self.day_of_year(ts_ms)
        season = 17.0 + 8.0 * math.cos(2 * math.pi * (doy - 200) / 365.2425)
        swing = 4.5 * math.sin(2 * math.pi * (self.hour(ts_ms) - 9.0) / 24.0)
        anomaly = 5.0 * (self.daily("temperature", ts_ms) - 0.5)
        return season + swing + anomaly - (2.0 if self.rain(ts_ms) > 0 else 0.0)

    def daylight(self, ts_ms: int) -> float:
        """Sunlight, 0 at night to 1 at a midsummer noon, from day length at this latitude."""
        doy = self.day_of_year(ts_ms)
        tilt = math.sin(2 * math.pi * (doy - 80) / 365.2425)
        length = 12.0 + tilt * (self.latitude - 20.0) * 0.14
        sunrise = 13.0 - length / 2.0
        h = self.hour(ts_ms) - sunrise
        if h <= 0.0 or h >= length:
            return 0.0
        return math.sin(math.pi * h / length) * (0.75 + 0.25 * tilt)
