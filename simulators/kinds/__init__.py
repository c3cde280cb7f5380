"""Sensor models, one class per telemetry kind (the kind is the stored measurement's name).

Every value name a model reports is a metric of `ingest.units`, so that a correct collector
stores it with its unit and its plausible range; a unit test holds them to that.
"""

from __future__ import annotations

from simulators.kinds.air import AirQuality, Noise
from simulators.kinds.base import Drift, SensorModel, Site, Zone
from simulators.kinds.mobility import Parking, Traffic
from simulators.kinds.utilities import EnergyMeter, Lighting, Waste, WaterMeter
from simulators.kinds.weather import Weather

SENSORS: dict[str, type[SensorModel]] = {
    m.kind: m
    for m in (AirQuality, Noise, Weather, Parking, Traffic, Lighting, Waste, WaterMeter,
              EnergyMeter)
}

__all__ = ["SENSORS", "Drift", "SensorModel", "Site", "Zone"]
