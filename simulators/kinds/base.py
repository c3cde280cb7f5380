"""What every sensor model shares: its site, a smooth random drift, and the model interface.

A model is one device's physics: constructed once with the device's own random generator and
its site, then asked for a reading at increasing timestamps. `dt_s` is the real time since the
device's previous reading, so quantities "per interval" (vehicles counted, energy used, rain)
stay true whether the device reports every 15 minutes of history or every second of a live run.
Values a model returns are inside the metric registry's plausible ranges by construction.
"""

from __future__ import annotations

import math
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from simulators.environment import Environment


@dataclass(slots=True)
class Zone:
    """A block of parking bays, shared by its bay sensors and its payment terminal."""

    capacity: int
    open_sessions: int = 0
    has_terminal: bool = False


@dataclass(frozen=True, slots=True)
class Site:
    """Where a device stands: its pilot's environment and, for parking, its zone."""

    env: Environment
    zone: Zone


class Drift:
    """A mean-reverting random walk (an AR(1) process) with a time constant in seconds.

    Successive readings of a real sensor are correlated; white noise would make every chart a
    hedge. The value is a standard-normal-ish deviation to scale by the caller.
    """

    __slots__ = ("_a", "_b", "_dt", "_rng", "_tau", "value")

    def __init__(self, rng: random.Random, tau_s: float) -> None:
        self._rng, self._tau = rng, tau_s
        self._dt, self._a, self._b = -1.0, 0.0, 1.0
        self.value = rng.gauss(0.0, 1.0)

    def step(self, dt_s: float) -> float:
        if dt_s != self._dt:  # devices report at a steady interval: reuse the coefficients
            self._dt, a = dt_s, math.exp(-max(dt_s, 0.0) / self._tau)
            self._a, self._b = a, math.sqrt(1.0 - a * a)
        self.value = self._a * self.value + self._b * self._rng.gauss(0.0, 1.0)
        return self.value


class SensorModel(ABC):
    """One device's sensor: `read` gives the values of the next telemetry message."""

    kind: ClassVar[str]
    base_interval_s: ClassVar[float]
    on_battery: ClassVar[bool] = False

    def __init__(self, rng: random.Random, site: Site) -> None:
        self.rng, self.site, self.env = rng, site, site.env

    @property
    def capacity(self) -> int | None:
        """The device's capacity where it has one (bays, lanes, luminaires); None otherwise."""
        return None

    @abstractmethod
    def read(self, ts_ms: int, dt_s: float) -> dict[str, float]:
        """The values at `ts_ms`, `dt_s` seconds after the previous reading."""


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: exact by inversion for small means, normal approximation for large."""
    if mean <= 0.0:
        return 0
    if mean > 30.0:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k
