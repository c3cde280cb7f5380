"""The KPI catalogue: every KPI citypilot serves, defined once.

The API lists these definitions, exports carry them (a definitions sheet in XLSX), the CLI
prints them and the dashboards are generated from them. Ids are stable: reports and scripts
quote them. Formulas are in words, for the city staff who put the figures in a report; the
computations are in `pull.py`, `push.py` and `outcomes.py`, one function per id.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ingest.stores.histogram import ACCURACY, TINY


class Family(StrEnum):
    PULL = "end-user pull"  # is the technology used?
    PUSH = "technology push"  # does it work?
    OUTCOME = "outcome"  # does the city get better?


class Regime(StrEnum):
    """The law or guideline a limit value comes from."""

    AQD_2008 = "Directive 2008/50/EC"  # limit values in force until 31 December 2029
    AQD_2024 = "Directive (EU) 2024/2881"  # limit values to be met from 1 January 2030
    END = "Directive 2002/49/EC (END)"  # the Lden reporting threshold of noise mapping
    WHO_2018 = "WHO Environmental Noise Guidelines 2018 (road traffic)"


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit value a KPI is judged against: `value` in `unit` (the metric's) over
    `averaging` (hour, day, calendar year), with the exceedances allowed per calendar year
    where the regime allows some."""

    regime: Regime
    value: float
    unit: str
    averaging: str
    allowed: int | None = None

    def describe(self) -> str:
        text = f"{self.regime.value}: {self.value:g} {self.unit} ({self.averaging})"
        return text + (f", at most {self.allowed} a year" if self.allowed is not None else "")


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
    limits: tuple[Limit, ...] = ()

    @property
    def threshold(self) -> float:
        """The one limit value an exceedance KPI counts against (its regimes share it)."""
        values = {limit.value for limit in self.limits}
        if len(values) != 1:
            raise ValueError(f"KPI {self.id} has no single limit value: {sorted(values)}")
        return values.pop()

    @property
    def limit_values(self) -> tuple[float, ...]:
        """The distinct limit values, lowest first (the lines a chart draws)."""
        return tuple(sorted({limit.value for limit in self.limits}))

    @property
    def allowances(self) -> tuple[int, ...]:
        """The distinct exceedances allowed a calendar year, fewest first."""
        return tuple(sorted({limit.allowed for limit in self.limits
                             if limit.allowed is not None}))


# What the definitions below count; the computations and the dashboards take it from here.
USE_TYPES = ("session_start", "use")  # the event types that are a use of a service

_ISO37122 = "ISO 37122:2019 (indicators for smart cities)"
_Y4903 = "ITU-T Y.4903/L.1603 (KPIs for smart sustainable cities)"
_AQD = ("EU Ambient Air Quality Directives 2008/50/EC (Annexes XI and XIV, in force until "
        "2029) and (EU) 2024/2881 (Annex I, limit values from 2030)")
_AQD_2030 = "EU Ambient Air Quality Directive (EU) 2024/2881, Annex I (limit values from 2030)"
_NOISE = ("EU Environmental Noise Directive 2002/49/EC, Annex I (Lden); WHO Environmental "
          "Noise Guidelines for the European Region 2018")
_STATION = ("gateway", "device")
_UG, _DB = "µg/m³", "dB(A)"
# The limit values, written once: the KPI functions, the dashboards, the alert rules and the
# console read them from the KPIs' `limits` (`Kpi.threshold`, `.limit_values`, `.allowances`).
# Checked against Annexes XI and XIV of 2008/50/EC and Annex I, Section 1 of (EU) 2024/2881.
_NO2_HOURLY = (Limit(Regime.AQD_2008, 200.0, _UG, "hour", 18),
              Limit(Regime.AQD_2024, 200.0, _UG, "hour", 3))
_NO2_DAILY = (Limit(Regime.AQD_2024, 50.0, _UG, "day", 18),)
_NO2_ANNUAL = (Limit(Regime.AQD_2008, 40.0, _UG, "calendar year"),
              Limit(Regime.AQD_2024, 20.0, _UG, "calendar year"))
_PM10_DAILY = (Limit(Regime.AQD_2008, 50.0, _UG, "day", 35),)
_PM10_DAILY_2030 = (Limit(Regime.AQD_2024, 45.0, _UG, "day", 18),)
_PM10_ANNUAL = (Limit(Regime.AQD_2008, 40.0, _UG, "calendar year"),
               Limit(Regime.AQD_2024, 20.0, _UG, "calendar year"))
_PM25_DAILY = (Limit(Regime.AQD_2024, 25.0, _UG, "day", 18),)
_PM25_ANNUAL = (Limit(Regime.AQD_2008, 25.0, _UG, "calendar year"),
               Limit(Regime.AQD_2024, 10.0, _UG, "calendar year"))
_LDEN = (Limit(Regime.END, 55.0, _DB, "year"), Limit(Regime.WHO_2018, 53.0, _DB, "year"))


def describe(limits: tuple[Limit, ...]) -> str:
    """Limit values in words, for formulas, exports and reports."""
    return "; ".join(limit.describe() for limit in limits)


def _exceedances(kpi_id: str, name: str, averaging: str, limits: tuple[Limit, ...],
                 reference: str) -> Kpi:
    """Hours or local days whose mean of a pollutant exceeds one threshold, per station."""
    [threshold] = {limit.value for limit in limits}  # one threshold per exceedance KPI
    span = "Hours" if averaging == "hour" else "Days"
    allowed = "; ".join(f"{limit.allowed} a year under {limit.regime.value}" for limit in limits)
    return Kpi(kpi_id, f"{span} with {name} above {threshold:g} {_UG}", Family.OUTCOME,
               span.lower(), f"{'hours' if averaging == 'hour' else 'local days'} whose mean "
               f"{name} exceeds {threshold:g} {_UG}, per station (allowed: {allowed})", "day",
               reference, _STATION, limits)


def _mean(kpi_id: str, name: str, limits: tuple[Limit, ...]) -> Kpi:
    """The mean of a pollutant over the period, per station, against annual limit values."""
    return Kpi(kpi_id, f"{name} mean", Family.OUTCOME, _UG, f"mean {name} over the period, "
               f"per station (annual limit values: {describe(limits)})", "day", _AQD,
               _STATION, limits)


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
        "registered devices (from their installation day, when the registry has one) plus "
        "unregistered devices that sent data in the period", "day",
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
        "95th percentile (nearest rank) of collector time minus device time, per kind; "
        "from rollups, each delay counts in a fixed logarithmic bucket read as its midpoint, "
        f"so the figure is within {ACCURACY * 100:g} % of the exact one (delays under "
        f"{TINY * 1e6:g} µs count as 0)",
        "day", _Y4903, ("kind",)),
    _exceedances("no2_hourly_exceedances", "NO2", "hour", _NO2_HOURLY, _AQD),
    _exceedances("no2_daily_exceedances", "NO2", "day", _NO2_DAILY, _AQD_2030),
    _mean("no2_mean", "NO2", _NO2_ANNUAL),
    _exceedances("pm10_daily_exceedances", "PM10", "day", _PM10_DAILY, _AQD),
    _exceedances("pm10_daily_exceedances_2030", "PM10", "day", _PM10_DAILY_2030, _AQD_2030),
    _mean("pm10_mean", "PM10", _PM10_ANNUAL),
    _exceedances("pm25_daily_exceedances", "PM2.5", "day", _PM25_DAILY, _AQD_2030),
    _mean("pm25_mean", "PM2.5", _PM25_ANNUAL),
    Kpi("exceedances_left", "Allowed exceedances left this year", Family.OUTCOME,
        "exceedances", "per station, exceedance KPI (`indicator`) and regime: the "
        "exceedances the regime allows in a calendar year minus those counted from 1 January "
        "(local time) of the year in which the period ends up to its end; negative when the "
        "limit value is breached", "day", _AQD, ("indicator", "regime", *_STATION)),
    Kpi("noise_lden", "Day-evening-night noise level Lden", Family.OUTCOME, "dB(A)",
        "10·log10((12·10^(Ld/10) + 4·10^((Le+5)/10) + 8·10^((Ln+10)/10)) / 24), with Ld, Le, "
        "Ln the energy means of LAeq over 07-19, 19-23 and 23-07 local time, each day "
        f"weighted equally, per station (against {describe(_LDEN)})", "day", _NOISE,
        _STATION, _LDEN),
    Kpi("lighting_energy_saving", "Street-lighting energy saving", Family.OUTCOME, "%",
        "one minus the energy the smart lighting used over the pilot's registered "
        "baseline (kWh per day) for the same time", "day", _ISO37122),
)

BY_ID: dict[str, Kpi] = {k.id: k for k in KPIS}


def limits_table() -> str:
    """The README's table of the outcome KPIs and their limit values (a test keeps it true)."""
    rows = ["| KPI id | title | limit values (regime: value (averaging), exceedances allowed) |",
            "|---|---|---|"]
    for k in KPIS:
        if k.family is Family.OUTCOME:
            rows.append(f"| `{k.id}` | {k.title} | {describe(k.limits) or '—'} |")
    return "\n".join(rows)
