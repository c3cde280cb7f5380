"""The deployed fleet: pilots, their gateways, and the devices behind each gateway.

Pilots are `pilot-01`, `pilot-02`, ... (or `<prefix>-01`, ...), gateways `gw-01`, ... per pilot,
devices a kind slug and a number unique in their pilot (`aq-0003`, `bike-0006`). Device kinds
cycle through a list that mixes sensors and service devices, so that two gateways of seven
devices already show every kind; a parking bay sensor and the payment terminal next to it share
a zone. Everything is derived from the seed: the same spec builds the same fleet.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ingest import topics
from simulators.environment import Environment
from simulators.kinds import SENSORS, SensorModel, Site, Zone
from simulators.services import SERVICES, ServiceModel, UserPool

# (role, kind or service, device-id slug), in the order devices are handed out
LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("sensor", "parking", "park"), ("service", "parking", "pay"),
    ("sensor", "air_quality", "aq"), ("sensor", "traffic", "traffic"),
    ("sensor", "noise", "noise"), ("service", "bike_sharing", "bike"),
    ("sensor", "weather", "meteo"), ("sensor", "lighting", "light"),
    ("service", "ev_charging", "ev"), ("sensor", "waste", "bin"),
    ("service", "kiosk", "kiosk"), ("sensor", "water_meter", "water"),
    ("service", "city_app", "app"), ("sensor", "energy_meter", "energy"),
)
# Mediterranean pilot cities: (UTC offset in hours, latitude)
_CITIES = ((1, 41.4), (2, 37.9), (1, 43.3), (3, 36.9), (2, 35.3), (1, 39.5), (2, 40.6))
STATUS_INTERVAL_S = 3_600.0
GATEWAY_STATUS_INTERVAL_S = 300.0


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """`pilots`: a count; `gateways` per pilot; `devices` per gateway."""

    pilots: int = 1
    gateways: int = 2
    devices: int = 7
    seed: int = 42
    pilot_prefix: str = "pilot"

    def __post_init__(self) -> None:
        for name in ("pilots", "gateways", "devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if not topics.is_id(f"{self.pilot_prefix}-{self.pilots:02d}"):
            raise ValueError(f"pilot prefix {self.pilot_prefix!r} makes pilot ids outside "
                             f"{topics.ID_PATTERN}")


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """A device as an operator's inventory lists it."""

    pilot: str
    gateway: str
    device: str
    role: str  # "sensor", "service" or "gateway"
    kind: str  # the telemetry kind, the service, or "gateway"
    interval_s: float
    capacity: int | None
    on_battery: bool


@dataclass(slots=True)
class Unit:
    """One simulated device (or gateway) with its model and its own random generator."""

    info: DeviceInfo
    rng: random.Random
    model: SensorModel | ServiceModel | None  # None: a gateway, which reports status only


def build(spec: FleetSpec) -> list[Unit]:
    """Every device of the fleet, pilot by pilot, each gateway before its devices."""
    units: list[Unit] = []
    for p in range(1, spec.pilots + 1):
        pilot = f"{spec.pilot_prefix}-{p:02d}"
        offset, latitude = _CITIES[(p - 1) % len(_CITIES)]
        env = Environment(spec.seed, pilot, offset, latitude)
        pools: dict[str, UserPool] = {}
        zones: dict[int, Zone] = {}
        for g in range(1, spec.gateways + 1):
            gateway = f"gw-{g:02d}"
            units.append(Unit(DeviceInfo(pilot, gateway, gateway, "gateway", "gateway",
                                         GATEWAY_STATUS_INTERVAL_S, None, False),
                              random.Random(f"{spec.seed}/{pilot}/{gateway}"), None))
            for j in range(spec.devices):
                k = (g - 1) * spec.devices + j
                units.append(_device(spec, env, pools, zones, pilot, gateway, k))
    return units


def _device(spec: FleetSpec, env: Environment, pools: dict[str, UserPool],
            zones: dict[int, Zone], pilot: str, gateway: str, k: int) -> Unit:
    role, kind, slug = LAYOUT[k % len(LAYOUT)]
    device = f"{slug}-{k + 1:04d}"
    rng = random.Random(f"{spec.seed}/{pilot}/{device}")
    # a bay sensor and the terminal after it in the layout stand in the same zone
    block = k // len(LAYOUT)
    zone = zones.get(block)
    if zone is None:
        zone = zones[block] = Zone(capacity=random.Random(f"{spec.seed}/{pilot}/zone/{block}")
                                   .randint(20, 160))
    site = Site(env, zone)
    model: SensorModel | ServiceModel
    if role == "sensor":
        model = SENSORS[kind](rng, site)
        on_battery = model.on_battery
    else:
        pool = pools.get(kind)
        if pool is None:
            cls = SERVICES[kind]
            pool = pools[kind] = UserPool(f"{spec.seed}:{pilot}:{kind}",
                                          random.Random(f"{spec.seed}/{pilot}/users/{kind}"),
                                          cls.returning)
        model = SERVICES[kind](rng, site, pool)
        on_battery = False
    info = DeviceInfo(pilot, gateway, device, role, kind, model.base_interval_s,
                      model.capacity, on_battery)
    return Unit(info, rng, model)
