"""Field names of foreign formats -> citypilot's canonical metrics, with unit conversion.

Every adapter reads readings under the format's own names (`Temperature`, `PM2.5`, `pm2_5`,
`temperature_3`, `CarbonDioxide`, `linkquality`). This module decides, for each, which stored
field it becomes, in one order:

1. an explicit `[sources.fields]` mapping (the most specific key an adapter offers first, e.g.
   Tasmota's `DS18B20.Temperature` before `Temperature`);
2. the built-in table of well-known names (`DEFAULT_FIELDS`, plus a format's own overrides such
   as Zigbee2MQTT's battery voltage in mV), tried on the normalised name and then without a
   trailing channel number (`temperature_3` -> temperature, as CayenneLPP names its channels);
3. the name itself, normalised to `[a-z][a-z0-9_]*` and stored without a unit, as DESIGN.md
   says for names the registry does not know (counted in `Decoded.unknown_metrics`).

Two readings of one message never overwrite each other: when *default* resolutions land on
the same metric (`temperature_3` and `temperature_5`) they keep their own names instead (and
yield to an explicit mapping of that metric); when two *explicit* mappings collide the message
is rejected, naming both fields.

Values are converted into the registry's unit (`ingest.units.convert`, the one registry) and
range-checked exactly as the native decoder does (`Metric.in_range`, same detail text).
Booleans are stored as 1.0/0.0 (parking bays report `occupied: true`); strings and other
non-numbers are not stored and are counted by the adapter (`Adapter.dropped_fields`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ingest import units
from ingest.model import DELAY_FIELD, NAME_PATTERN, Reason

log = logging.getLogger(__name__)

TIME_SOURCE_FIELD = "time_source"
DEFAULT_KIND = "sensor"
# The canonical metrics that describe the device rather than its surroundings: they go to
# `device_status`, like the native status channel's fields.
STATUS_METRICS = frozenset({"battery", "rssi", "snr", "linkquality"})
_RESERVED_FIELDS = frozenset({DELAY_FIELD, TIME_SOURCE_FIELD, "state", "spool_depth"})
_NAME = re.compile(NAME_PATTERN)
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"([a-z])([A-Z])")
_CHANNEL = re.compile(r"_\d+$")


class TimeSource(StrEnum):
    """Which clock a stored point's timestamp comes from (the `time_source` string field)."""

    DEVICE = "device"  # the device's (or its host's) own clock, with a zone
    NETWORK = "network"  # a network server's clock (LoRaWAN NS, Zigbee2MQTT's last_seen)
    ZONED = "zoned"  # a zoneless device clock, placed in the source's configured timezone
    RECEIVED = "received"  # the format has no clock: the collector's receive time


@dataclass(frozen=True, slots=True)
class FieldRule:
    """Store this reading as `metric`; the format delivers it in `unit` (None: registry unit)."""

    metric: str
    unit: str | None = None


def _rules(table: dict[str, tuple[str, str | None]]) -> dict[str, FieldRule]:
    return {key: FieldRule(metric, unit) for key, (metric, unit) in table.items()}


# Keys are normalised names (see `normalise`): lowercase, runs of other characters -> "_".
DEFAULT_FIELDS: Mapping[str, FieldRule] = _rules({
    "temperature": ("temperature", None), "temp": ("temperature", None),
    "humidity": ("humidity", None), "relative_humidity": ("humidity", None),
    "hum": ("humidity", None), "rh": ("humidity", None),
    "pressure": ("pressure", None), "barometric_pressure": ("pressure", None),
    "pm2_5": ("pm25", None), "pm25": ("pm25", None), "pm10": ("pm10", None),
    "co2": ("co2", None), "carbon_dioxide": ("co2", None),
    "no2": ("no2", None), "o3": ("o3", None),
    "illuminance": ("illuminance", None), "illuminance_lux": ("illuminance", None),
    "luminosity": ("illuminance", None), "lux": ("illuminance", None),
    "wind_speed": ("wind_speed", None), "windspeed": ("wind_speed", None),
    "noise_laeq": ("noise_laeq", None), "laeq": ("noise_laeq", None),
    "power": ("power", None), "voltage": ("voltage", None),
    "battery": ("battery", "%"), "bat": ("battery", "%"), "batt": ("battery", "%"),
    "battery_level": ("battery", "%"),
    "rssi": ("rssi", None), "snr": ("snr", None),
    "linkquality": ("linkquality", None), "lqi": ("linkquality", None),
})


def normalise(name: str) -> str:
    """`PM2.5` -> `pm2_5`, `CarbonDioxide` -> `carbon_dioxide`, `working hours` -> `working_hours`.

    camelCase is split (`batteryLevel` -> `battery_level`, `DewPoint` -> `dew_point`) but
    letter-digit runs are not (`DS18B20` -> `ds18b20`, `eCO2` -> `e_co2`).
    """
    return _NOT_ALNUM.sub("_", _CAMEL.sub(r"\1_\2", name).lower()).strip("_")


def own_name(name: str) -> str | None:
    """The stored name of a reading no table knows, or None when it cannot be one."""
    cleaned = normalise(name)[:64]
    if not _NAME.fullmatch(cleaned) or cleaned in _RESERVED_FIELDS:
        return None
    return cleaned


@dataclass(frozen=True, slots=True)
class Offered:
    """A reading as a format offers it.

    `name` is the format's full name (stored, normalised, when nothing maps it; used in
    details); `keys` are the explicit-mapping keys to try, most specific first; `leaf` is what
    the built-in table looks up (`air.pm2_5` offers leaf `pm2_5`).
    """

    name: str
    keys: tuple[str, ...]
    leaf: str
    value: Any

    @classmethod
    def plain(cls, name: str, value: Any, *qualifiers: str) -> Offered:
        """A reading under one name, optionally also mappable as `<qualifier>.<name>`."""
        keys = (*(f"{q}.{name}" for q in qualifiers), name)
        return cls(name, keys, name, value)


@dataclass(frozen=True, slots=True)
class Resolved:
    name: str  # the format's name, for details
    rule: FieldRule
    explicit: bool


def _default(leaf: str, defaults: Mapping[str, FieldRule]) -> FieldRule | None:
    key = normalise(leaf)
    rule = defaults.get(key)
    if rule is None and _CHANNEL.search(key):
        rule = defaults.get(_CHANNEL.sub("", key))
    return rule


def resolve(offered: Offered, explicit: Mapping[str, FieldRule],
            defaults: Mapping[str, FieldRule]) -> Resolved | None:
    """Which metric an offered reading is stored as; None when it cannot be stored at all."""
    for key in offered.keys:
        rule = explicit.get(key)
        if rule is not None:
            return Resolved(offered.name, rule, explicit=True)
    rule = _default(offered.leaf, defaults)
    if rule is not None:
        return Resolved(offered.name, rule, explicit=False)
    name = own_name(offered.name)
    return Resolved(offered.name, FieldRule(name), explicit=False) if name else None


class FieldError(ValueError):
    """A reading that cannot be stored: the message is rejected with `reason`."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def settle(resolved: Sequence[Resolved]) -> list[Resolved | None]:
    """Undo default resolutions that collide, refuse explicit ones that do (see module doc).

    Returns a list parallel to `resolved`: None where a reading cannot be stored at all.
    """
    by_metric: dict[str, list[int]] = {}
    for i, r in enumerate(resolved):
        by_metric.setdefault(r.rule.metric, []).append(i)
    out: list[Resolved | None] = list(resolved)
    for metric, group in by_metric.items():
        if len(group) == 1:
            continue
        explicit = [i for i in group if resolved[i].explicit]
        if len(explicit) > 1:
            names = ", ".join(repr(resolved[i].name) for i in explicit)
            raise FieldError(Reason.BAD_SHAPE, f"fields {names} are all mapped to {metric!r}; "
                             "map them to distinct metrics in [sources.fields]")
        for i in group:
            if not resolved[i].explicit:  # an explicit mapping keeps the metric; defaults yield
                name = own_name(resolved[i].name)
                out[i] = Resolved(resolved[i].name, FieldRule(name), False) if name else None
    seen: dict[str, str] = {}
    for settled in out:
        if settled is None:
            continue
        if settled.rule.metric in seen:
            raise FieldError(Reason.BAD_SHAPE, f"fields {seen[settled.rule.metric]!r} and "
                             f"{settled.name!r} both become {settled.rule.metric!r}; map one "
                             "of them in [sources.fields]")
        seen[settled.rule.metric] = settled.name
    return out


def number(value: object) -> float | None:
    """A reading's numeric value (booleans as 1/0), or None when it is not a number."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    return None


def store_value(resolved: Resolved, value: float, stated_unit: str | None,
                unknown: list[str]) -> float:
    """Convert into the registry's unit and range-check; FieldError when it cannot be stored."""
    metric_name = resolved.rule.metric
    unit = resolved.rule.unit or stated_unit
    if not math.isfinite(value):
        raise FieldError(Reason.NOT_FINITE, f"{resolved.name}={value!r} is not finite")
    metric = units.lookup(metric_name)
    if metric is None:
        unknown.append(metric_name)
        return value
    if unit is not None:
        try:
            value = units.convert(value, unit, metric.unit)
        except units.UnitError as exc:
            raise FieldError(Reason.UNKNOWN_UNIT, f"{resolved.name}: {exc}") from None
        if not math.isfinite(value):
            raise FieldError(Reason.NOT_FINITE, f"{resolved.name} is not finite in "
                             f"{metric.unit}")
    if not metric.in_range(value):
        raise FieldError(Reason.OUT_OF_RANGE, f"{metric_name}={value!r} outside "
                         f"[{metric.low:g}, {metric.high:g}] {metric.unit}")
    return value


def check_rule(rule: FieldRule) -> str | None:
    """Why a configured mapping cannot work (for the config loader), or None when it can."""
    if rule.metric in _RESERVED_FIELDS:
        return f"metric {rule.metric!r} is reserved"
    if rule.unit is None:
        return None
    metric = units.lookup(rule.metric)
    if metric is None:
        return (f"metric {rule.metric!r} is not in the registry, so unit {rule.unit!r} "
                "cannot be converted; drop the unit or map to a registered metric")
    if not units.can_convert(rule.unit, metric.unit):
        return f"cannot convert {rule.unit!r} to {metric.unit!r} (the unit of {rule.metric})"
    return None
