"""The KPI catalogue: every KPI citypilot serves, defined once.

The API lists these definitions, exports carry them (a definitions sheet in XLSX), the CLI
prints them and the dashboards are generated from them. Ids are stable: reports and scripts
quote them. Formulas are in words, for the city staff who put the figures in a report; the
computations are in `pull.py`, `push.py` and `outcomes.py`, one function per id. Titles,
formulas, references and limit values in words are marked for the evaluation report's
translations (`api.texts`: `N_`, `Msg`); they are the same English strings everywhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from api.texts import N_, Msg
from ingest.stores.histogram import ACCURACY, TINY


class Family(StrEnum):
    PULL = N_("end-user pull")  # is the technology used?
    PUSH = N_("technology push")  # does it work?
    OUTCOME = N_("outcome")  # does the city get better?


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

    def describe(self) -> Msg:
        if self.allowed is None:
            return Msg("{regime}: {value} {unit} ({averaging})", regime=self.regime.value,
                       value=self.value, unit=self.unit, averaging=Msg(self.averaging))
        return Msg("{regime}: {value} {unit} ({averaging}), at most {allowed} a year",
                   regime=self.regime.value, value=self.value, unit=self.unit,
                   averaging=Msg(self.averaging), allowed=self.allowed)


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

_ISO37122 = Msg("ISO 37122:2019 (indicators for smart cities)")
_Y4903 = Msg("ITU-T Y.4903/L.1603 (KPIs for smart sustainable cities)")
_AQD = Msg("EU Ambient Air Quality Directives 2008/50/EC (Annexes XI and XIV, in force until "
           "2029) and (EU) 2024/2881 (Annex I, limit values from 2030)")
_AQD_2030 = Msg("EU Ambient Air Quality Directive (EU) 2024/2881, Annex I (limit values from "
                "2030)")
_NOISE = Msg("EU Environmental Noise Directive 2002/49/EC, Annex I (Lden); WHO Environmental "
             "Noise Guidelines for the European Region 2018")
_STATION = ("gateway", "device")
_UG, _DB = "µg/m³", "dB(A)"
_HOUR, _DAY, _YEAR, _CALENDAR_YEAR = N_("hour"), N_("day"), N_("year"), N_("calendar year")
# The limit values, written once: the KPI functions, the dashboards, the alert rules and the
# console read them from the KPIs' `limits` (`Kpi.threshold`, `.limit_values`, `.allowances`).
# Checked against Annexes XI and XIV of 2008/50/EC and Annex I, Section 1 of (EU) 2024/2881.
_NO2_HOURLY = (Limit(Regime.AQD_2008, 200.0, _UG, _HOUR, 18),
              Limit(Regime.AQD_2024, 200.0, _UG, _HOUR, 3))
_NO2_DAILY = (Limit(Regime.AQD_2024, 50.0, _UG, _DAY, 18),)
_NO2_ANNUAL = (Limit(Regime.AQD_2008, 40.0, _UG, _CALENDAR_YEAR),
              Limit(Regime.AQD_2024, 20.0, _UG, _CALENDAR_YEAR))
_PM10_DAILY = (Limit(Regime.AQD_2008, 50.0, _UG, _DAY, 35),)
_PM10_DAILY_2030 = (Limit(Regime.AQD_2024, 45.0, _UG, _DAY, 18),)
_PM10_ANNUAL = (Limit(Regime.AQD_2008, 40.0, _UG, _CALENDAR_YEAR),
               Limit(Regime.AQD_2024, 20.0, _UG, _CALENDAR_YEAR))
_PM25_DAILY = (Limit(Regime.AQD_2024, 25.0, _UG, _DAY, 18),)
_PM25_ANNUAL = (Limit(Regime.AQD_2008, 25.0, _UG, _CALENDAR_YEAR),
               Limit(Regime.AQD_2024, 10.0, _UG, _CALENDAR_YEAR))
_LDEN = (Limit(Regime.END, 55.0, _DB, _YEAR), Limit(Regime.WHO_2018, 53.0, _DB, _YEAR))


def describe(limits: tuple[Limit, ...]) -> Msg:
    """Limit values in words, for formulas, exports and reports."""
    return Msg.listing(tuple(limit.describe() for limit in limits))


def _exceedances(kpi_id: str, name: str, averaging: str, limits: tuple[Limit, ...],
                 reference: str) -> Kpi:
    """Hours or local days whose mean of a pollutant exceeds one threshold, per station."""
    [threshold] = {limit.value for limit in limits}  # one threshold per exceedance KPI
    allowed = tuple(Msg("{allowed} a year under {regime}", allowed=limit.allowed,
                        regime=limit.regime.value)
                    for limit in limits if limit.allowed is not None)
    if averaging == _HOUR:
        title = Msg("Hours with {name} above {threshold} {unit}", name=name,
                    threshold=threshold, unit=_UG)
        formula = Msg("hours whose mean {name} exceeds {threshold} {unit}, per station "
                      "(allowed: {allowed})", name=name, threshold=threshold, unit=_UG,
                      allowed=allowed)
    else:
        title = Msg("Days with {name} above {threshold} {unit}", name=name,
                    threshold=threshold, unit=_UG)
        formula = Msg("local days whose mean {name} exceeds {threshold} {unit}, per station "
                      "(allowed: {allowed})", name=name, threshold=threshold, unit=_UG,
                      allowed=allowed)
    return Kpi(kpi_id, title, Family.OUTCOME, "hours" if averaging == _HOUR else "days",
               formula, "day", reference, _STATION, limits)


def _mean(kpi_id: str, name: str, limits: tuple[Limit, ...]) -> Kpi:
    """The mean of a pollutant over the period, per station, against annual limit values."""
    return Kpi(kpi_id, Msg("{name} mean", name=name), Family.OUTCOME, _UG,
               Msg("mean {name} over the period, per station (annual limit values: {limits})",
                   name=name, limits=describe(limits)), "day", _AQD, _STATION, limits)


KPIS: tuple[Kpi, ...] = (
    Kpi("usage_events", Msg("Uses per service"), Family.PULL, "uses",
        Msg("number of events of type session_start or use, per service"), "day", _Y4903,
        ("service",)),
    Kpi("active_users_daily", Msg("Daily active users"), Family.PULL, "users",
        Msg("distinct pseudonymous users with at least one use in a local day; for a week or "
            "month, the mean over its days"), "day", _Y4903),
    Kpi("active_users_weekly", Msg("Weekly active users"), Family.PULL, "users",
        Msg("distinct pseudonymous users with at least one use in the 7 local days ending at "
            "the end of the period"), "week", _Y4903),
    Kpi("returning_user_rate", Msg("Returning-user rate"), Family.PULL, "%",
        Msg("share of the users of the 7 days ending at the end of the period who also used a "
            "service in the 28 days before them"), "week", _Y4903),
    Kpi("usage_growth_wow", Msg("Week-over-week usage growth"), Family.PULL, "%",
        Msg("uses in the 7 days ending at the end of the period over uses in the 7 days before "
            "them, minus one, per service"), "week", _Y4903, ("service",)),
    Kpi("utilisation", Msg("Utilisation of capacity"), Family.PULL, "%",
        Msg("time-weighted occupancy (mean of each sensor's hourly means of `occupancy`), "
            "weighted by the registered capacity of each sensor, per telemetry kind (parking "
            "bays; chargers reporting busy as occupancy)"), "day", _ISO37122, ("kind",)),
    Kpi("peak_demand_ratio", Msg("Peak-hour demand against capacity"), Family.PULL, "1",
        Msg("the most uses in any hour of the period over the service's registered capacity"),
        "day", _Y4903, ("service",)),
    Kpi("usage_per_device", Msg("Uses per deployed device"), Family.PULL, "uses/device",
        Msg("uses of a service over its devices (registered for the service, or with uses in "
            "the period)"), "day", _Y4903, ("service",)),
    Kpi("devices_deployed", Msg("Devices deployed"), Family.PUSH, "devices",
        Msg("registered devices (from their installation day, when the registry has one) plus "
            "unregistered devices that sent data in the period"), "day",
        _ISO37122),
    Kpi("devices_online", Msg("Devices online"), Family.PUSH, "devices",
        Msg("devices with a reading or event within twice their expected reporting interval "
            "before the end of the period (or now, for a period in progress)"), "day", _ISO37122),
    Kpi("availability", Msg("Availability"), Family.PUSH, "%",
        Msg("mean over the sensors of the share of the hours of the period (of their "
            "reporting intervals, when longer than an hour) that hold at least one reading, "
            "each sensor counted from its installation: the registered installation day, else "
            "the hour of its first reading; a registered sensor with neither is deployed but "
            "silent and counts as unavailable for the whole period"), "day", _Y4903),
    Kpi("data_completeness", Msg("Data completeness"), Family.PUSH, "%",
        Msg("readings received (per sensor, at most as many as expected) over readings "
            "expected from the sensors' reporting intervals since their installation (as for "
            "availability; a registered sensor never heard from is expected all period)"), "day",
        _Y4903),
    Kpi("rejection_rate", Msg("Rejection rate"), Family.PUSH, "%",
        Msg("dead letters on the pilot's topics over dead letters plus stored readings and "
            "events"), "day", _Y4903),
    Kpi("ingest_delay_p95", Msg("Ingest delay, 95th percentile"), Family.PUSH, "s",
        Msg("95th percentile (nearest rank) of collector time minus device time, per kind; "
            "from rollups, each delay counts in a fixed logarithmic bucket read as its midpoint, "
            "so the figure is within {accuracy} % of the exact one (delays under {tiny} µs count "
            "as 0)", accuracy=ACCURACY * 100, tiny=TINY * 1e6),
        "day", _Y4903, ("kind",)),
    _exceedances("no2_hourly_exceedances", "NO2", "hour", _NO2_HOURLY, _AQD),
    _exceedances("no2_daily_exceedances", "NO2", "day", _NO2_DAILY, _AQD_2030),
    _mean("no2_mean", "NO2", _NO2_ANNUAL),
    _exceedances("pm10_daily_exceedances", "PM10", "day", _PM10_DAILY, _AQD),
    _exceedances("pm10_daily_exceedances_2030", "PM10", "day", _PM10_DAILY_2030, _AQD_2030),
    _mean("pm10_mean", "PM10", _PM10_ANNUAL),
    _exceedances("pm25_daily_exceedances", "PM2.5", "day", _PM25_DAILY, _AQD_2030),
    _mean("pm25_mean", "PM2.5", _PM25_ANNUAL),
    Kpi("exceedances_left", Msg("Allowed exceedances left this year"), Family.OUTCOME,
        "exceedances", Msg("per station, exceedance KPI (`indicator`) and regime: the "
            "exceedances the regime allows in a calendar year minus those counted from 1 January "
            "(local time) of the year in which the period ends up to its end; negative when the "
            "limit value is breached"), "day", _AQD, ("indicator", "regime", *_STATION)),
    Kpi("noise_lden", Msg("Day-evening-night noise level Lden"), Family.OUTCOME, "dB(A)",
        Msg("10·log10((12·10^(Ld/10) + 4·10^((Le+5)/10) + 8·10^((Ln+10)/10)) / 24), with Ld, Le, "
            "Ln the energy means of LAeq over 07-19, 19-23 and 23-07 local time, each day "
            "weighted equally, per station (against {limits})", limits=describe(_LDEN)),
        "day", _NOISE, _STATION, _LDEN),
    Kpi("lighting_energy_saving", Msg("Street-lighting energy saving"), Family.OUTCOME, "%",
        Msg("one minus the energy the smart lighting used over the pilot's registered "
            "baseline (kWh per day) for the same time"), "day", _ISO37122),
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
