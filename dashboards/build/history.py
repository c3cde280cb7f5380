"""The history dashboard: the long-range figures, read from the hourly rollups.

The live dashboards read raw points and default to at most two days; over weeks, months and
years raw queries grow with the history they scan, so this dashboard reads `<db>_rollups`
(the data source `ROLLUPS`), where `citypilot rollup` keeps per hour and series the count,
sum, min, max (and, for levels in dB, the energy sum) of every field. Each InfluxQL panel is
a `Twin`: its query on the rollups and the raw query it stands for, which must answer the same
numbers over whole finished hours (`tests/dashboards` runs both). A mean is `sum(__sum) /
sum(__count)`, never a mean of hourly means, so it stays exact over any bucket.

Buckets are whole hours or more (each panel's min interval is `1h`, as is the data source's),
and an hour counts when its start is in the range. Figures that need sets or the registry
(active and returning users, availability, completeness, Lden) come from the API, which reads
the rollups too. The hour in progress and the hours after the worker's last pass are not
there yet: the live dashboards show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.build.boards import (
    EVENTS,
    GATEWAYS,
    IS_USE,
    KINDS,
    LOCAL,
    NOT_STATUS,
    PILOT,
    SERVICES,
    gateway_variable,
    pilot_variable,
    timezone_variable,
)
from dashboards.build.panels import (
    ROLLUPS,
    Json,
    Panel,
    api_kpi,
    dashboard,
    influx,
    kpi,
    kpi_text,
    metric_unit,
    query_variable,
    stat_options,
)
from dashboards.build.panels import grafana_unit as unit
from ingest.model import DELAY_FIELD
from ingest.stores import number, quote_ident

_HUGE = 1_000_000_000  # as in outcomes.py: ceil((mean - limit) / it) is 1 above the limit
STATION = '"gateway", "device"'
ALL_KINDS = "/.*/"
MIN_INTERVAL = "1h"


@dataclass(frozen=True, slots=True)
class Twin:
    """A panel query on the rollups and the raw query it must agree with."""

    rollup: str
    raw: str


def _part(field: str, part: str) -> str:
    return quote_ident(f"{field}__{part}")


def count(field: str) -> Twin:
    return Twin(f"sum({_part(field, 'count')})", f"count({quote_ident(field)})")


def mean(field: str) -> Twin:
    return Twin(f"sum({_part(field, 'sum')}) / sum({_part(field, 'count')})",
                f"mean({quote_ident(field)})")


def _where(*parts: str) -> str:
    return " WHERE " + " AND ".join((*parts, "$timeFilter"))


def select(what: Twin, source: str, rest: str, alias: str = "") -> Twin:
    """`SELECT <what> FROM <source> <rest>` on both sides."""
    name = f" AS {quote_ident(alias)}" if alias else ""
    return Twin(f"SELECT {what.rollup}{name} FROM {source}{rest}",
                f"SELECT {what.raw}{name} FROM {source}{rest}")


def outer(select_list: str, inner: Twin, rest: str) -> Twin:
    return Twin(f"SELECT {select_list} FROM ({inner.rollup}){rest}",
                f"SELECT {select_list} FROM ({inner.raw}){rest}")


def exceedances(field: str, limit: float, every: str, local: str = "") -> Twin:
    """Hours (or local days) whose mean is above `limit`, per station."""
    m = mean(field)
    above = Twin(f"ceil(({m.rollup} - {number(limit)}) / {_HUGE})",
                 f"ceil(({m.raw} - {number(limit)}) / {_HUGE})")
    inner = select(above, ALL_KINDS, f"{_where(PILOT, GATEWAYS)} GROUP BY time({every}), "
                   f"{STATION} fill(none){local}", alias="x")
    return outer('sum("x")', inner, f" GROUP BY {STATION}")


def energy_mean(field: str) -> Twin:
    """The energy mean of a level in dB per interval and station: 10·log10 of the mean of
    10^(L/10); the rollups keep the energy sum, raw points need a subquery (with `10.0`:
    InfluxDB 1.6 types `pow(10, x)` in a subquery as an integer and truncates it)."""
    rest = f" GROUP BY time($__interval), {STATION} fill(none)"
    rolled = (f"SELECT 10 * log10(sum({_part(field, 'e10')}) / sum({_part(field, 'count')})) "
              f"FROM {ALL_KINDS}{_where(PILOT, GATEWAYS)}{rest}")
    raw = (f'SELECT 10 * log10(mean("e")) FROM (SELECT pow(10.0, {quote_ident(field)} / 10) AS '
           f'"e" FROM {ALL_KINDS}{_where(PILOT, GATEWAYS)}) WHERE $timeFilter{rest}')
    return Twin(rolled, raw)


def per_station(field: str, every: str, local: str = "") -> Twin:
    return select(mean(field), ALL_KINDS, f"{_where(PILOT, GATEWAYS)} GROUP BY time({every}), "
                  f"{STATION} fill(none){local}")


Entry = tuple[Panel, Twin | None]  # a panel, and its twin when it reads the rollups
_ROLLED = "From the hourly rollups."


def _rolled(kind: str, title: str, description: str, twin: Twin, unit_: str, alias: str = "",
            **more: Any) -> Entry:
    panel = Panel(kind, title, description, [influx(twin.rollup, alias, source=ROLLUPS)],
                  unit_, **more)
    panel.extra = {**panel.extra, "interval": MIN_INTERVAL}
    return panel, twin


def _api(kpi_id: str, how: str) -> Entry:
    k = kpi(kpi_id)
    return Panel("timeseries", k.title, kpi_text(k, how), [api_kpi(kpi_id)], unit(k.unit)), None


def _no2_limit() -> float:
    return kpi("no2_hourly_exceedances").threshold  # the catalogue holds the figure


def _pm10_limit() -> float:
    return kpi("pm10_daily_exceedances").threshold


def _stats() -> list[Entry]:
    no2, pm10, pm25 = (kpi(k) for k in ("no2_hourly_exceedances", "pm10_daily_exceedances",
                                        "pm25_mean"))
    station = "$tag_gateway/$tag_device"
    return [
        _rolled("stat", no2.title, kpi_text(no2, _ROLLED), exceedances(
            "no2", _no2_limit(), "1h"), unit(no2.unit), station, width=8, height=5,
            options=stat_options()),
        _rolled("stat", pm10.title, kpi_text(pm10, _ROLLED), exceedances(
            "pm10", _pm10_limit(), "1d", f" {LOCAL}"), unit(pm10.unit), station, width=8,
            height=5, options=stat_options()),
        _rolled("stat", pm25.title, kpi_text(pm25, _ROLLED), select(
            mean("pm25"), ALL_KINDS, f"{_where(PILOT, GATEWAYS)} GROUP BY {STATION}"),
            unit(pm25.unit), station, width=8, height=5, options=stat_options()),
    ]


def _usage() -> list[Entry]:
    uses = kpi("usage_events")
    return [
        _rolled("timeseries", f"{uses.title}, per day", kpi_text(uses, "Per local day; "
               + _ROLLED), select(count("value"), EVENTS, f"{_where(PILOT, SERVICES, IS_USE)}"
                                  f' GROUP BY time(1d), "service" fill(0) {LOCAL}'),
               unit(uses.unit), "$tag_service", custom={"drawStyle": "bars",
                                                        "fillOpacity": 60}),
        _api("active_users_daily", "From the API (day sets in the rollups)."),
        _rolled("timeseries", "Occupancy, daily mean", "Mean `occupancy` per local day and "
               f"telemetry kind (the input of \"{kpi('utilisation').title}\"). {_ROLLED}",
               select(mean("occupancy"), ALL_KINDS, f"{_where(PILOT)} GROUP BY time(1d) "
                      f"fill(none) {LOCAL}"), metric_unit("occupancy"), "$measurement"),
        _api("utilisation", "From the API."),
    ]


def _environment() -> list[Entry]:
    station = "$tag_gateway/$tag_device"
    return [
        _rolled("timeseries", "NO2, mean per interval", "Mean NO2 per station per interval "
               f"(whole hours); the line is the hourly limit value of "
               f"{number(_no2_limit())} µg/m³. {_ROLLED}",
               per_station("no2", "$__interval"), metric_unit("no2"), station,
               limits=(_no2_limit(),)),
        _rolled("timeseries", "PM10, daily mean", "Daily (local day) mean PM10 per station; "
               f"the line is the daily limit value of {number(_pm10_limit())} µg/m³. "
               + _ROLLED, per_station("pm10", "1d", f" {LOCAL}"), metric_unit("pm10"),
               station, limits=(_pm10_limit(),),
               custom={"drawStyle": "bars", "fillOpacity": 50}),
        _rolled("timeseries", "PM2.5, mean per interval", "Mean PM2.5 per station per "
               f"interval (whole hours). {_ROLLED}", per_station("pm25", "$__interval"),
               metric_unit("pm25")),
        _rolled("timeseries", "Noise LAeq, energy mean per interval", "Energy mean of LAeq "
               "per station per interval (10·log10 of the mean of 10^(LAeq/10), exact from "
               f"the rollups' energy sums). {_ROLLED}", energy_mean("noise_laeq"),
               metric_unit("noise_laeq"), station),
        _api("noise_lden", "From the API (local day/evening/night windows)."),
    ]


def _fleet() -> list[Entry]:
    reporting = outer('count("n")', select(
        count(DELAY_FIELD), KINDS, f"{_where(PILOT, GATEWAYS)} GROUP BY time(1d), {STATION} "
        f"fill(none) {LOCAL}", alias="n"), f" WHERE $timeFilter GROUP BY time(1d) fill(0) "
        f"{LOCAL}")
    return [
        _rolled("timeseries", "Devices reporting per kind, per day", "Devices with at least "
               "one reading or event in the local day (the raw side of availability). "
               + _ROLLED, reporting, "suffix: devices", "$measurement"),
        _rolled("timeseries", "Readings per gateway, per day", "Readings and events stored "
               "per local day (the raw side of completeness). " + _ROLLED, select(
                   count(DELAY_FIELD), KINDS, f"{_where(PILOT, GATEWAYS)} GROUP BY time(1d), "
                   f'"gateway" fill(0) {LOCAL}'), "suffix: readings",
               "$tag_gateway $measurement"),
        *(_api(k, "From the API (needs the registry).")
          for k in ("availability", "data_completeness")),
    ]


def _entries() -> list[Entry]:
    return [*_stats(), *_usage(), *_environment(), *_fleet()]


def twins() -> dict[str, Twin]:
    """The twin of every panel that reads the rollups, by panel title."""
    return {panel.title: twin for panel, twin in _entries() if twin is not None}


def history() -> Json:
    variables = [pilot_variable(), gateway_variable(), query_variable(
        "service", "Service", f'SHOW TAG VALUES FROM {EVENTS} WITH KEY = "service" WHERE '
        f"{PILOT}", multi=True), query_variable(
        "kind", "Kind", f"SHOW MEASUREMENTS WHERE {PILOT}", multi=True, regex=NOT_STATUS),
        timezone_variable()]
    return dashboard("citypilot-history", "citypilot — History (hourly rollups)", "Months "
                     "and years at a glance: uses, air quality, noise and the fleet, from the "
                     "hourly rollups (finished hours only; the live dashboards show the hour "
                     "in progress).", "now-90d", variables,
                     [panel for panel, _ in _entries()], ["history"])
