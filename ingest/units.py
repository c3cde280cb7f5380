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
