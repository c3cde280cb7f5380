"""The KPI catalogue: every KPI citypilot serves, defined once.

The API lists these definitions, exports carry them (a definitions sheet in XLSX), the CLI
prints them and the dashboards are generated from them. Ids are stable: reports and scripts
quote them. Formulas are in words, for the city staff who put the figures in a report; the
computations are in `pull.py`, `push.py` and `outcomes.py`, one function per id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Family(StrEnum):
    PULL = "end-user pull"  # is the technology used?
    PUSH = "technology push"  # does it work?
    OUTCOME = "outcome"  # does the city get better?


@dataclass(frozen=True, slots=True)
class Kpi:
    id: str
    title: str
    family: Family
    unit: str
    formula: str
    grain: str  # the natural time grain; every KPI answers at day, week and month
    reference: str
    dimensions: tuple[str, ...] = ()


# What the definitions below count and compare against; the computations and the dashboards
# take them from here.
USE_TYPES = ("session_start", "use")  # the event types that are a use of a service
NO2_HOURLY_LIMIT = 200.0  # µg/m³, 2008/50/EC Annex XI
PM10_DAILY_LIMIT = 50.0  # µg/m³, 2008/50/EC Annex XI

_ISO37122 = "ISO 37122:2019 (indicators for smart cities)"
_Y4903 = "ITU-T Y.4903/L.1603 (KPIs for smart sustainable cities)"
_AQD = "EU Ambient Air Quality Directive 2008/50/EC, Annex XI (limit values)"
_END = "EU Environmental Noise Directive 2002/49/EC, Annex I (Lden)"

KPIS: tuple[Kpi, ...] = (
    Kpi("usage_events", "Uses per service", Family.PULL, "uses",
        "number of events of type session_start or use, per service", "day", _Y4903,
        ("service",)),
    Kpi("active_users_daily", "Daily active users", Family.PULL, "users",
        "distinct pseudonymous users with at least one use in a local day; for a week or "
        "month, the mean over its days", "day", _Y4903),
    Kpi("active_users_weekly", "Weekly active users", Family.PULL, "users",
        "distinct pseudonymous users with at least one use in the 7 local days ending at "
        "the end of the period", "week", _Y4903),
    Kpi("returning_user_rate", "Returning-user rate", Family.PULL, "%",
        "share of the users of the 7 days ending at the end of the period who also used a "
        "service in the 28 days before them", "week", _Y4903),
    Kpi("usage_growth_wow", "Week-over-week usage growth", Family.PULL, "%",
        "uses in the 7 days ending at the end of the period over uses in the 7 days before "
        "them, minus one, per service", "week", _Y4903, ("service",)),
    Kpi("utilisation", "Utilisation of capacity", Family.PULL, "%",
        "time-weighted occupancy (mean of each sensor's hourly means of `occupancy`), "
        "weighted by the registered capacity of each sensor, per telemetry kind (parking "
        "bays; chargers reporting busy as occupancy)", "day", _ISO37122, ("kind",)),
    Kpi("peak_demand_ratio", "Peak-hour demand against capacity", Family.PULL, "1",
        "the most uses in any hour of the period over the service's registered capacity",
        "day", _Y4903, ("service",)),
    Kpi("usage_per_device", "Uses per deployed device", Family.PULL, "uses/device",
        "uses of a service over its devices (registered for the service, or with uses in "
        "the period)", "day", _Y4903, ("service",)),
    Kpi("devices_deployed", "Devices deployed", Family.PUSH, "devices",
        "registered devices plus unregistered devices that sent data in the period", "day",
        _ISO37122),
    Kpi("devices_online", "Devices online", Family.PUSH, "devices",
        "devices with a reading or event within twice their expected reporting interval "
        "before the end of the period (or now, for a period in progress)", "day", _ISO37122),
    Kpi("availability", "Availability", Family.PUSH, "%",
        "mean over the sensors of the share of the hours of the period (of their "
        "reporting intervals, when longer than an hour) that hold at least one reading, "
        "each sensor counted from its installation: the registered installation day, else "
        "the hour of its first reading; a registered sensor with neither is deployed but "
        "silent and counts as unavailable for the whole period", "day", _Y4903),
    Kpi("data_completeness", "Data completeness", Family.PUSH, "%",
        "readings received (per sensor, at most as many as expected) over readings "
        "expected from the sensors' reporting intervals since their installation (as for "
        "availability; a registered sensor never heard from is expected all period)", "day",
        _Y4903),
    Kpi("rejection_rate", "Rejection rate", Family.PUSH, "%",
        "dead letters on the pilot's topics over dead letters plus stored readings and "
        "events", "day", _Y4903),
    Kpi("ingest_delay_p95", "Ingest delay, 95th percentile", Family.PUSH, "s",
        "95th percentile (nearest rank) of collector time minus device time, per kind",
        "day", _Y4903, ("kind",)),
    Kpi("no2_hourly_exceedances", "Hours with NO2 above 200 µg/m³", Family.OUTCOME, "hours",
        "hours whose mean NO2 exceeds 200 µg/m³, per station (limit: 18 hours a year)",
        "day", _AQD, ("gateway", "device")),
    Kpi("pm10_daily_exceedances", "Days with PM10 above 50 µg/m³", Family.OUTCOME, "days",
        "local days whose mean PM10 exceeds 50 µg/m³, per station (limit: 35 days a year)",
        "day", _AQD, ("gateway", "device")),
    Kpi("pm25_mean", "PM2.5 mean", Family.OUTCOME, "µg/m³",
        "mean PM2.5 over the period, per station (annual limit value: 25 µg/m³)", "day",
        _AQD, ("gateway", "device")),
    Kpi("noise_lden", "Day-evening-night noise level Lden", Family.OUTCOME, "dB(A)",
        "10·log10((12·10^(Ld/10) + 4·10^((Le+5)/10) + 8·10^((Ln+10)/10)) / 24), with Ld, Le, "
        "Ln the energy means of LAeq over 07-19, 19-23 and 23-07 local time, each day "
        "weighted equally, per station", "day", _END, ("gateway", "device")),
    Kpi("lighting_energy_saving", "Street-lighting energy saving", Family.OUTCOME, "%",
        "one minus the energy the smart lighting used over the pilot's registered "
        "baseline (kWh per day) for the same time", "day", _ISO37122),
)

BY_ID: dict[str, Kpi] = {k.id: k for k in KPIS}
