"""The public services of a pilot and their devices.

parking       a payment terminal of a parking zone: a paid session per car (minutes at the end)
bike_sharing  a bike dock: rentals (minutes), fewer in the rain and in heat or cold
ev_charging   an EV charger: charging sessions (kWh delivered at the end), many regulars
kiosk         an information kiosk: one-shot queries, mostly by visitors (few returning users)
city_app      the city app's backend: requests from residents, who come back
"""

from __future__ import annotations

import random

from simulators.kinds.base import Site
from simulators.services.base import SessionService, UseService
from simulators.services.users import UserPool


class ParkingTerminal(SessionService):
    service = "parking"
    base_interval_s = 300.0
    returning = 0.7
    profile = "parking"
    mean_stay_s = 100 * 60.0
    peak_per_hour = 0.0  # demand follows the zone's capacity instead
    paying = 0.85  # the share of parked cars that pay at the terminal

    def __init__(self, rng: random.Random, site: Site, users: UserPool) -> None:
        super().__init__(rng, site, users)
        site.zone.has_terminal = True

    def choose_capacity(self) -> int:
        return self.site.zone.capacity

    def demand(self, ts_ms: int) -> float:
        # Little's law: starts per tick = cars wanted / ticks per stay, so that the open
        # sessions track the zone's demand through the day.
        target = self.cap * self.paying * self.env.level("parking", ts_ms) * self.size
        return target * self.base_interval_s / self.mean_stay_s

    def opened_now(self) -> None:
        self.site.zone.open_sessions = len(self._open)

    def expected_per_tick(self, ts_ms: int | None = None) -> float:
        starts = self.cap * self.paying * self.size * self._level("parking", ts_ms) \
            * self.base_interval_s \
            / self.mean_stay_s
        return starts * (2.0 + self.feedback)


class BikeDock(SessionService):
    service = "bike_sharing"
    base_interval_s = 120.0
    returning = 0.8
    profile = "commute"
    mean_stay_s = 22 * 60.0
    peak_per_hour = 14.0

    def choose_capacity(self) -> int:
        return self.rng.randint(10, 30)

    def demand(self, ts_ms: int) -> float:
        weather = 0.25 if self.env.rain(ts_ms) > 0 else 1.0
        temp = self.env.temperature(ts_ms)
        if temp < 6.0 or temp > 34.0:
            weather *= 0.6
        return super().demand(ts_ms) * weather


class EvCharger(SessionService):
    service = "ev_charging"
    base_interval_s = 600.0
    returning = 0.9
    profile = "charging"
    mean_stay_s = 150 * 60.0
    peak_per_hour = 1.6

    def __init__(self, rng: random.Random, site: Site, users: UserPool) -> None:
        super().__init__(rng, site, users)
        self.kw = rng.choice((7.4, 11.0, 22.0))

    def choose_capacity(self) -> int:
        return self.rng.choice((2, 2, 2, 4))

    def end_value(self, stay_s: float) -> float:
        """kWh delivered: the charger's power over the stay, until the car is full."""
        return round(min(75.0, self.kw * 0.9 * stay_s / 3_600.0), 2)


class Kiosk(UseService):
    service = "kiosk"
    base_interval_s = 300.0
    returning = 0.3
    feedback = 0.05
    profile = "daytime"
    peak_per_hour = 14.0


class CityApp(UseService):
    service = "city_app"
    base_interval_s = 120.0
    returning = 0.85
    feedback = 0.01
    profile = "evening"
    peak_per_hour = 80.0


SERVICES: dict[str, type[SessionService] | type[UseService]] = {
    m.service: m for m in (ParkingTerminal, BikeDock, EvCharger, Kiosk, CityApp)
}
