"""The metric registry: the one place where units and plausible ranges live.

A metric name the registry does not know is stored as given (no unit) and counted; a
registered metric outside its plausible range is rejected. Adding a sensor therefore needs no
release, while a broken sensor reporting -40000 µg/m³ cannot pollute a KPI.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    low: float
    high: float
    description: str

    def in_range(self, value: float) -> bool:
        return self.low <= value <= self.high


_METRICS: tuple[Metric, ...] = (
    # air quality
    Metric("pm25", "µg/m³", 0.0, 1000.0, "fine particulate matter PM2.5"),
    Metric("pm10", "µg/m³", 0.0, 2000.0, "particulate matter PM10"),
    Metric("no2", "µg/m³", 0.0, 2000.0, "nitrogen dioxide"),
    Metric("o3", "µg/m³", 0.0, 1000.0, "ozone"),
    Metric("co2", "ppm", 0.0, 10000.0, "carbon dioxide"),
    Metric("aqi", "index", 0.0, 500.0, "air-quality index"),
    # noise
    Metric("noise_laeq", "dB(A)", 0.0, 160.0, "equivalent continuous sound level"),
    Metric("noise_lamax", "dB(A)", 0.0, 180.0, "maximum sound level"),
    # weather
    Metric("temperature", "°C", -60.0, 70.0, "air temperature"),
    Metric("humidity", "%", 0.0, 100.0, "relative humidity"),
    Metric("pressure", "hPa", 300.0, 1100.0, "barometric pressure"),
    Metric("wind_speed", "m/s", 0.0, 100.0, "wind speed"),
    Metric("rain", "mm", 0.0, 500.0, "precipitation in the reporting interval"),
    Metric("illuminance", "lx", 0.0, 200000.0, "illuminance"),
    # parking and mobility
    Metric("occupied", "1", 0.0, 1.0, "bay occupied (1) or free (0)"),
    Metric("occupancy", "1", 0.0, 1.0, "share of bays occupied"),
    Metric("vehicle_count", "vehicles", 0.0, 100000.0, "vehicles counted in the interval"),
    Metric("bike_count", "bikes", 0.0, 100000.0, "bicycles counted in the interval"),
    Metric("pedestrian_count", "people", 0.0, 100000.0, "pedestrians counted in the interval"),
    Metric("speed", "km/h", 0.0, 300.0, "mean speed"),
    # lighting and energy
    Metric("power", "W", 0.0, 1.0e7, "electric power"),
    Metric("energy", "Wh", 0.0, 1.0e9, "energy used in the interval"),
    Metric("energy_total", "kWh", 0.0, 1.0e12, "meter reading"),
    Metric("dimming", "1", 0.0, 1.0, "dimming level, 0 off to 1 full"),
    # waste, water
    Metric("fill_level", "1", 0.0, 1.0, "bin fill level, 0 empty to 1 full"),
    Metric("water_volume", "m³", 0.0, 1.0e9, "water meter reading"),
    Metric("flow", "m³/h", 0.0, 1.0e6, "water flow"),
    # device health (status channel)
    Metric("battery", "1", 0.0, 1.0, "battery charge, fraction 0-1"),
    Metric("rssi", "dBm", -200.0, 20.0, "received signal strength"),
    Metric("snr", "dB", -50.0, 50.0, "signal-to-noise ratio"),
    Metric("linkquality", "lqi", 0.0, 255.0, "Zigbee link quality"),
    Metric("spool_depth", "messages", 0.0, 1.0e12, "messages waiting in a gateway's spool"),
    Metric("voltage", "V", 0.0, 1000.0, "supply voltage"),
)

REGISTRY: dict[str, Metric] = {m.name: m for m in _METRICS}


def lookup(name: str) -> Metric | None:
    """The registered metric of this name, or None when the registry does not know it."""
    return REGISTRY.get(name)


@dataclass(frozen=True, slots=True)
class UnitDefinition:
    """How open standards name a registry unit: its name, its UCUM code and its QUDT URI
    (SensorThings' `unitOfMeasurement`, the inventory schema)."""

    name: str
    ucum: str
    qudt: str

    @property
    def uri(self) -> str:
        return f"http://qudt.org/vocab/unit/{self.qudt}"


# Counts are UCUM's 1 with an annotation ({vehicles}); A-weighting has no UCUM or QUDT unit of
# its own, so dB(A) is the decibel and says so in its name.
DEFINITIONS: dict[str, UnitDefinition] = {
    "µg/m³": UnitDefinition("microgram per cubic metre", "ug/m3", "MicroGM-PER-M3"),
    "ppm": UnitDefinition("part per million", "[ppm]", "PPM"),
    "index": UnitDefinition("index", "{index}", "UNITLESS"),
    "dB(A)": UnitDefinition("decibel (A-weighted)", "dB{A}", "DeciB"),
    "°C": UnitDefinition("degree Celsius", "Cel", "DEG_C"),
    "%": UnitDefinition("percent", "%", "PERCENT"),
    "hPa": UnitDefinition("hectopascal", "hPa", "HectoPA"),
    "m/s": UnitDefinition("metre per second", "m/s", "M-PER-SEC"),
    "mm": UnitDefinition("millimetre", "mm", "MilliM"),
    "lx": UnitDefinition("lux", "lx", "LUX"),
    "1": UnitDefinition("one (fraction)", "1", "UNITLESS"),
    "vehicles": UnitDefinition("vehicles", "{vehicles}", "NUM"),
    "bikes": UnitDefinition("bicycles", "{bikes}", "NUM"),
    "people": UnitDefinition("people", "{people}", "NUM"),
    "km/h": UnitDefinition("kilometre per hour", "km/h", "KiloM-PER-HR"),
    "W": UnitDefinition("watt", "W", "W"),
    "Wh": UnitDefinition("watt hour", "W.h", "W-HR"),
    "kWh": UnitDefinition("kilowatt hour", "kW.h", "KiloW-HR"),
    "m³": UnitDefinition("cubic metre", "m3", "M3"),
    "m³/h": UnitDefinition("cubic metre per hour", "m3/h", "M3-PER-HR"),
    "dBm": UnitDefinition("decibel milliwatt", "dB[mW]", "DeciB_M"),
    "dB": UnitDefinition("decibel", "dB", "DeciB"),
    "lqi": UnitDefinition("link quality indicator", "{lqi}", "UNITLESS"),
    "messages": UnitDefinition("messages", "{messages}", "NUM"),
    "V": UnitDefinition("volt", "V", "V"),
}


# What each metric is, as a URI a SensorThings ObservedProperty's `definition` names: the EEA's
# air-quality pollutant vocabulary for pollutants, QUDT's quantity kinds for physical
# quantities. A metric without one is defined by its own ObservedProperty.
_EEA = "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/"
_QK = "http://qudt.org/vocab/quantitykind/"
CONCEPTS: dict[str, str] = {
    "pm25": _EEA + "6001", "pm10": _EEA + "5", "no2": _EEA + "8", "o3": _EEA + "7",
    "noise_laeq": _QK + "SoundPressureLevel", "noise_lamax": _QK + "SoundPressureLevel",
    "temperature": _QK + "Temperature", "humidity": _QK + "RelativeHumidity",
    "pressure": _QK + "AtmosphericPressure", "wind_speed": _QK + "Speed",
    "illuminance": _QK + "Illuminance", "speed": _QK + "Speed", "power": _QK + "Power",
    "energy": _QK + "Energy", "energy_total": _QK + "Energy", "water_volume": _QK + "Volume",
    "flow": _QK + "VolumeFlowRate", "voltage": _QK + "Voltage",
}


# ---------------------------------------------------------------------------------------------
# Unit conversion (added for the gateway-format adapters, ingest/decode/fields.py).
#
# Foreign formats state readings in their own units (Tasmota `TempUnit: "F"`, Zigbee2MQTT
# battery voltage in mV, a `[sources.fields]` mapping saying `unit = "inHg"`); the stored value
# is always in the registry's unit above. Each unit belongs to one dimension and converts to the
# dimension's base unit as `base = (value + offset) * scale`, so °F -> °C is the textbook
# `(F - 32) * 5/9`, not a round trip through kelvin that would add float noise.
# ---------------------------------------------------------------------------------------------


class UnitError(ValueError):
    """A unit nobody registered, or two units of different quantities."""


@dataclass(frozen=True, slots=True)
class _Unit:
    dimension: str
    scale: float
    offset: float = 0.0


_UNITS: dict[str, _Unit] = {
    # temperature, base °C
    "°C": _Unit("temperature", 1.0),
    "°F": _Unit("temperature", 5.0 / 9.0, -32.0),
    "K": _Unit("temperature", 1.0, -273.15),
    # pressure, base hPa (mmHg and inHg: the conventional 133.322387415 Pa and 3386.38866667 Pa)
    "hPa": _Unit("pressure", 1.0),
    "mbar": _Unit("pressure", 1.0),
    "Pa": _Unit("pressure", 0.01),
    "kPa": _Unit("pressure", 10.0),
    "bar": _Unit("pressure", 1000.0),
    "mmHg": _Unit("pressure", 1.33322387415),
    "inHg": _Unit("pressure", 33.8638866667),
    "psi": _Unit("pressure", 68.9475729318),
    # dimensionless fractions, base 1 (battery "%" becomes the 0-1 fraction)
    "1": _Unit("fraction", 1.0),
    "%": _Unit("fraction", 0.01),
    # electricity, bases V, W, Wh
    "V": _Unit("voltage", 1.0),
    "mV": _Unit("voltage", 0.001),
    "W": _Unit("power", 1.0),
    "mW": _Unit("power", 0.001),
    "kW": _Unit("power", 1000.0),
    "Wh": _Unit("energy", 1.0),
    "kWh": _Unit("energy", 1000.0),
    "MWh": _Unit("energy", 1.0e6),
    # speed, base m/s
    "m/s": _Unit("speed", 1.0),
    "km/h": _Unit("speed", 1.0 / 3.6),
    "mph": _Unit("speed", 0.44704),
    "kn": _Unit("speed", 1852.0 / 3600.0),
    "ft/s": _Unit("speed", 0.3048),
    "yd/s": _Unit("speed", 0.9144),
    # concentrations, bases ppm and µg/m³
    "ppm": _Unit("mixing_ratio", 1.0),
    "ppb": _Unit("mixing_ratio", 0.001),
    "µg/m³": _Unit("mass_concentration", 1.0),
    "mg/m³": _Unit("mass_concentration", 1000.0),
    # light, length, volume, flow
    "lx": _Unit("illuminance", 1.0),
    "klx": _Unit("illuminance", 1000.0),
    "mm": _Unit("length", 1.0),
    "cm": _Unit("length", 10.0),
    "m": _Unit("length", 1000.0),
    "in": _Unit("length", 25.4),
    "m³": _Unit("volume", 1.0),
    "l": _Unit("volume", 0.001),
    "m³/h": _Unit("flow", 1.0),
    "l/h": _Unit("flow", 0.001),
    "l/min": _Unit("flow", 0.06),
}

# Spellings seen in the wild (Tasmota's "C"/"F", ASCII stand-ins for ³ and µ, the Greek mu).
_UNIT_ALIASES: dict[str, str] = {
    "C": "°C", "degC": "°C", "℃": "°C", "celsius": "°C", "Celsius": "°C",
    "F": "°F", "degF": "°F", "℉": "°F", "fahrenheit": "°F", "Fahrenheit": "°F",
    "kelvin": "K", "mb": "mbar", "hpa": "hPa", "mmhg": "mmHg", "inhg": "inHg",
    "percent": "%", "mv": "mV", "kwh": "kWh",
    "kph": "km/h", "kmh": "km/h", "kt": "kn", "knots": "kn",
    "ug/m3": "µg/m³", "μg/m³": "µg/m³", "µg/m3": "µg/m³", "mg/m3": "mg/m³",
    "lux": "lx", "m3": "m³", "L": "l", "m3/h": "m³/h",
}


def unit_name(unit: str) -> str | None:
    """The registry's spelling of a unit, or None when no conversion knows it."""
    unit = unit.strip()
    if unit in _UNITS:
        return unit
    return _UNIT_ALIASES.get(unit)


def can_convert(from_unit: str, to_unit: str) -> bool:
    try:
        convert(0.0, from_unit, to_unit)
    except UnitError:
        return False
    return True


def convert(value: float, from_unit: str, to_unit: str) -> float:
    """`value` in `from_unit`, expressed in `to_unit`; UnitError when that is not possible."""
    if from_unit == to_unit:
        return value
    a, b = unit_name(from_unit), unit_name(to_unit)
    if a is None:
        raise UnitError(f"unknown unit {from_unit!r}")
    if a == b:
        return value
    if b is None:
        raise UnitError(f"unknown unit {to_unit!r}")
    src, dst = _UNITS[a], _UNITS[b]
    if src.dimension != dst.dimension:
        raise UnitError(f"cannot convert {from_unit!r} ({src.dimension}) to {to_unit!r} "
                        f"({dst.dimension})")
    base = (value + src.offset) * src.scale
    return base / dst.scale - dst.offset
