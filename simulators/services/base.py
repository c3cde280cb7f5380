"""Service models: a device of a public service reports each use of it as an event.

A service device is asked once per tick what happened since its previous tick, and reports
those events with their own times inside that interval (as a terminal that uploads its
transactions every few minutes would). Session
services (parking, shared bikes, EV charging) start sessions while they have capacity and end
them after a sampled stay; one-shot services (a kiosk, the city app) report uses. Some users
leave feedback (a rating 1-5). Stays are counted in ticks, so that when a live run compresses
time (a tick every few seconds instead of every minute) sessions still open and close within
it; everything else reads the real timestamp's rhythm.
"""

from __future__ import annotations

import heapq
import math
import random
from abc import ABC, abstractmethod
from typing import ClassVar

from simulators.environment import mean
from simulators.kinds.base import Site, poisson
from simulators.services.users import UserPool

EventTuple = tuple[int, str, str, float]  # (ts ms, type, user, value)

_RATINGS = (1.0, 2.0, 3.0, 4.0, 5.0)
_RATING_WEIGHTS = (0.05, 0.07, 0.18, 0.35, 0.35)


class ServiceModel(ABC):
    service: ClassVar[str]
    base_interval_s: ClassVar[float]
    returning: ClassVar[float]  # the share of uses by someone who used it before
    feedback: ClassVar[float] = 0.02

    def __init__(self, rng: random.Random, site: Site, users: UserPool) -> None:
        self.rng, self.site, self.env, self.users = rng, site, site.env, users

    @property
    def capacity(self) -> int | None:
        return None

    @abstractmethod
    def tick(self, ts_ms: int, interval_ms: int) -> list[EventTuple]:
        """The events in the `interval_ms` before `ts_ms`, in time order (often none)."""

    @abstractmethod
    def expected_per_tick(self, ts_ms: int | None = None) -> float:
        """The mean number of events per tick at `ts_ms` (over a week without): it sizes the
        live message rate."""

    def _level(self, profile: str, ts_ms: int | None) -> float:
        return mean(profile) if ts_ms is None else self.env.level(profile, ts_ms)

    def _rating(self, ts_ms: int, user: str) -> EventTuple:
        return (ts_ms, "feedback", user, self.rng.choices(_RATINGS, _RATING_WEIGHTS)[0])


class SessionService(ServiceModel):
    """Sessions with a start and an end, at most `capacity` open at once."""

    profile: ClassVar[str]
    mean_stay_s: ClassVar[float]
    peak_per_hour: ClassVar[float]  # session starts per hour at the week's busiest time

    def __init__(self, rng: random.Random, site: Site, users: UserPool) -> None:
        super().__init__(rng, site, users)
        self._open: list[tuple[int, int, str, int]] = []  # (end tick, seq, user, start ms)
        self._tick = self._seq = 0
        self.size = self.rng.uniform(0.7, 1.3)
        self.cap = self.choose_capacity()

    @property
    def capacity(self) -> int:
        return self.cap

    @abstractmethod
    def choose_capacity(self) -> int:
        """How many sessions this device can hold at once (bays, bikes, connectors)."""

    def demand(self, ts_ms: int) -> float:
        """Expected session starts in this tick."""
        return self.peak_per_hour * self.size * self.base_interval_s / 3_600.0 \
            * self.env.level(self.profile, ts_ms)

    def end_value(self, stay_s: float) -> float:
        """The value of a session_end: by default its length in minutes."""
        return round(stay_s / 60.0, 1)

    def tick(self, ts_ms: int, interval_ms: int) -> list[EventTuple]:
        self._tick += 1
        rng, opened, out = self.rng, self._open, []
        begin = ts_ms - interval_ms
        free_before = self.cap - len(opened)
        ends: list[int] = []
        while opened and opened[0][0] <= self._tick:
            _, _, user, start_ms = heapq.heappop(opened)
            t = max(begin + int(rng.random() * interval_ms), start_ms + 1)
            ends.append(t)
            out.append((t, "session_end", user, self.end_value((t - start_ms) / 1000.0)))
            if rng.random() < self.feedback:
                out.append(self._rating(t + 1, user))
        ends.sort()
        stay_ticks = self.mean_stay_s / self.base_interval_s
        for j in range(min(self.cap - len(opened), poisson(rng, self.demand(ts_ms)))):
            t = begin + int(rng.random() * interval_ms)
            if j >= free_before:  # this car takes the bay of one that left in this interval
                t = max(t, ends[j - free_before] + 1)
            ticks = max(1, round(rng.lognormvariate(math.log(stay_ticks) - 0.18, 0.6)))
            self._seq += 1
            heapq.heappush(opened, (self._tick + ticks, self._seq, user := self.users.pick(), t))
            out.append((t, "session_start", user, 1.0))
        self.opened_now()
        if len(out) > 1:
            out.sort()
        return out

    def opened_now(self) -> None:
        """A hook for models whose open sessions others observe (a parking zone)."""

    def expected_per_tick(self, ts_ms: int | None = None) -> float:
        starts = self.peak_per_hour * self.size * self.base_interval_s / 3_600.0 \
            * self._level(self.profile, ts_ms)
        return starts * (2.0 + self.feedback)


class UseService(ServiceModel):
    """One-shot uses (`use` events) with an occasional rating."""

    profile: ClassVar[str]
    peak_per_hour: ClassVar[float]

    def __init__(self, rng: random.Random, site: Site, users: UserPool) -> None:
        super().__init__(rng, site, users)
        self.size = self.rng.uniform(0.6, 1.4)

    def tick(self, ts_ms: int, interval_ms: int) -> list[EventTuple]:
        rng, out = self.rng, []
        rate = self.peak_per_hour * self.size * self.base_interval_s / 3_600.0 \
            * self.env.level(self.profile, ts_ms)
        for _ in range(poisson(rng, rate)):
            t = ts_ms - interval_ms + int(rng.random() * interval_ms)
            user = self.users.pick()
            out.append((t, "use", user, 1.0))
            if rng.random() < self.feedback:
                out.append(self._rating(t + 1, user))
        if len(out) > 1:
            out.sort()
        return out

    def expected_per_tick(self, ts_ms: int | None = None) -> float:
        return self.peak_per_hour * self.size * self.base_interval_s / 3_600.0 \
            * self._level(self.profile, ts_ms) * (1.0 + self.feedback)
