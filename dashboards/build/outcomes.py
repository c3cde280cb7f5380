"""The environment-outcomes and the device drill-down dashboards.

Every limit value drawn is the catalogue's (`Kpi.limits`, the figures the KPIs compute with):
a stat panel turns orange at the lower of two regimes' figures and red at the higher (for
counts, one above the exceedances allowed), a chart draws each limit value as a line.
Hours and days in exceedance are counted in InfluxQL without a comparison operator on an
aggregate (InfluxQL has none in SELECT): `ceil((mean - limit) / 1e9)` is 1 for a mean above
the limit and 0 at or below it, for any mean within the registry's plausible range, so the
sum counts the exceedances and still answers 0 (a row, not an empty result) when there are
none. The allowances left in the calendar year (counted from 1 January, whatever the range)
come from the API.
"""

from __future__ import annotations

from api.kpis.definitions import Kpi, describe
from dashboards.build.boards import GATEWAYS, LOCAL, PILOT, gateway_variable, pilot_variable, where
from dashboards.build.boards import timezone_variable as tz_variable
from dashboards.build.panels import (
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
    unit_overrides,
)
from dashboards.build.panels import grafana_unit as unit
from ingest.model import DELAY_FIELD, EVENT_MEASUREMENT, STATUS_MEASUREMENT
from ingest.stores import number, quote_ident
from ingest.units import REGISTRY

_HUGE = 1_000_000_000  # far above any plausible concentration: (mean - limit) / it < 1
STATION = '"gateway", "device"'
ALL_KINDS = "/.*/"
DEVICE = "\"gateway\" = '$gateway' AND \"device\" = '$device'"
_NOT_METRICS = f"/^(?!{DELAY_FIELD}$|time_source$).+$/"
_NOT_KINDS = f"/^(?!{EVENT_MEASUREMENT}$|{STATUS_MEASUREMENT}$).+$/"
_STATION_ALIAS = "$tag_gateway/$tag_device"
# The air-quality stat panels, a row per pollutant: (KPI id, field, hourly or local daily).
_AIR = (("no2_hourly_exceedances", "no2", "1h"), ("no2_daily_exceedances", "no2", "1d"),
        ("no2_mean", "no2", None),
        ("pm10_daily_exceedances", "pm10", "1d"), ("pm10_daily_exceedances_2030", "pm10", "1d"),
        ("pm10_mean", "pm10", None),
        ("pm25_daily_exceedances", "pm25", "1d"), ("pm25_mean", "pm25", None))


def _exceedances(field: str, limit: float, every: str) -> str:
    local = f" {LOCAL}" if every == "1d" else ""
    inner = (f"SELECT ceil((mean({quote_ident(field)}) - {number(limit)}) / {_HUGE}) AS \"x\" "
             f"FROM {ALL_KINDS}{where(PILOT, GATEWAYS)} GROUP BY time({every}), {STATION} "
             f"fill(none){local}")
    return f'SELECT sum("x") FROM ({inner}) GROUP BY {STATION}'


def _mean(field: str, every: str | None = None) -> str:
    """The mean per station over the range, or per `every` (local days for `1d`)."""
    by = f"time({every}), {STATION} fill(none)" if every else STATION
    local = f" {LOCAL}" if every == "1d" else ""
    return (f"SELECT mean({quote_ident(field)}) FROM {ALL_KINDS}{where(PILOT, GATEWAYS)} "
            f"GROUP BY {by}{local}")


def _stat_limits(k: Kpi) -> tuple[float, ...]:
    """Where a stat turns orange and red: above each allowance, or at each limit value."""
    if k.allowances:
        return tuple(float(allowed + 1) for allowed in k.allowances)
    return k.limit_values


def _lines(*kpis: Kpi) -> tuple[float, ...]:
    return tuple(sorted({v for k in kpis for v in k.limit_values}))


def _stat(k: Kpi, target: Json, how: str) -> Panel:
    return Panel("stat", k.title, kpi_text(k, how), [target], unit(k.unit), width=8, height=5,
                 limits=_stat_limits(k), options=stat_options())


def _stats() -> list[Panel]:
    out = []
    for kpi_id, field, every in _AIR:
        k = kpi(kpi_id)
        query = _exceedances(field, k.threshold, every) if every else _mean(field)
        out.append(_stat(k, influx(query, _STATION_ALIAS), "Over the dashboard's range."))
    lden = kpi("noise_lden")
    out.append(_stat(lden, api_kpi("noise_lden"), "Latest day of the range; from the API "
                     "(local day/evening/night windows)."))
    left = kpi("exceedances_left")
    out.append(Panel("timeseries", left.title, kpi_text(left, "Per local day of the range, "
                     "one line per station, exceedance KPI and regime; from the API (the "
                     "calendar year from 1 January)."), [api_kpi("exceedances_left")],
                     unit(left.unit), width=24))
    return out


def _series() -> list[Panel]:
    no2, pm10, pm10_2030, pm25 = (kpi(k) for k in (
        "no2_hourly_exceedances", "pm10_daily_exceedances", "pm10_daily_exceedances_2030",
        "pm25_daily_exceedances"))
    lden = kpi("noise_lden")
    bars = {"drawStyle": "bars", "fillOpacity": 50}
    return [
        Panel("timeseries", "NO2, hourly mean", "Hourly mean NO2 per station; the line is "
              f"the hourly limit value ({describe(no2.limits)}).",
              [influx(_mean("no2", "1h"), _STATION_ALIAS)], metric_unit("no2"),
              limits=_lines(no2)),
        Panel("timeseries", "PM10, daily mean", "Daily (local day) mean PM10 per station; "
              f"the lines are the daily limit values ({describe(pm10.limits + pm10_2030.limits)}).",
              [influx(_mean("pm10", "1d"), _STATION_ALIAS)], metric_unit("pm10"),
              limits=_lines(pm10, pm10_2030), custom=bars),
        Panel("timeseries", "PM2.5, daily mean", "Daily (local day) mean PM2.5 per station; "
              f"the line is the daily limit value ({describe(pm25.limits)}).",
              [influx(_mean("pm25", "1d"), _STATION_ALIAS)], metric_unit("pm25"),
              limits=_lines(pm25), custom=bars),
        Panel("timeseries", "Noise LAeq, hourly", "Hourly energy mean of LAeq per station "
              "(10·log10 of the mean of 10^(LAeq/10)); the lines are Lden's thresholds "
              f"({describe(lden.limits)}), drawn for scale.", [influx(
                  'SELECT 10 * log10(mean("e")) FROM (SELECT pow(10.0, "noise_laeq" / 10) AS '
                  f'"e" FROM {ALL_KINDS}{where(PILOT, GATEWAYS)}) WHERE $timeFilter GROUP BY '
                  f"time(1h), {STATION} fill(none)", _STATION_ALIAS)], metric_unit("noise_laeq"),
              limits=_lines(lden)),
        Panel("timeseries", kpi("lighting_energy_saving").title, kpi_text(
            kpi("lighting_energy_saving"), "From the API (the registered baseline)."),
            [api_kpi("lighting_energy_saving")], unit(kpi("lighting_energy_saving").unit),
            width=24),
    ]


def environment() -> Json:
    return dashboard("citypilot-environment", "citypilot — Environment outcomes", "Air "
                     "quality against the EU limit values, noise and street-lighting "
                     "energy, per station.", "now-2d",
                     [pilot_variable(), gateway_variable(), tz_variable()],
                     [*_stats(), *_series()], ["outcomes"])


def _status_panels() -> list[Panel]:
    status = quote_ident(STATUS_MEASUREMENT)

    def last(field: str) -> str:
        return (f"SELECT last({quote_ident(field)}) AS {quote_ident(field)} FROM {status}"
                f"{where(PILOT, DEVICE)} GROUP BY time($__interval) fill(none)")

    online = {"type": "value", "options": {"online": {"color": "green", "index": 0},
                                           "offline": {"color": "red", "index": 1}}}
    return [
        Panel("state-timeline", "State", "The state the device last reported (`online`, or "
              "`offline` from its last will or its own status).", [influx(last("state"),
                                                                         "$col")],
              "string", width=24, height=4, mappings=[online]),
        Panel("timeseries", "Battery", "Battery charge the device reports.",
              [influx(last("battery"), "$col")], metric_unit("battery"), width=8),
        Panel("timeseries", "Radio", "Signal strength and signal-to-noise ratio.",
              [influx(last("rssi"), "$col"), influx(last("snr"), "$col")],
              metric_unit("rssi"), width=8, overrides=unit_overrides(["rssi", "snr"])),
        Panel("timeseries", "Spool depth", "Messages waiting in the gateway's spool (a "
              "gateway's own status; choose the gateway as the device).",
              [influx(last("spool_depth"), "$col")], metric_unit("spool_depth"), width=8),
    ]


def device() -> Json:
    metrics = Panel(
        "timeseries", "$metric", "Every metric of the device's kind, one panel each, "
        "averaged per interval; units from the metric registry.", [influx(
            'SELECT mean("$metric") AS "$metric" FROM "$kind" WHERE '
            f"{PILOT} AND {DEVICE} AND $timeFilter GROUP BY time($__interval) fill(none)",
            "$col")], "none", width=8,
        overrides=unit_overrides(sorted(REGISTRY)),
        extra={"repeat": "metric", "repeatDirection": "h", "maxPerRow": 3})
    others = [
        Panel("timeseries", "Ingest delay", "Collector time minus device time of the "
              "device's readings and events.", [influx(
                  f"SELECT mean({quote_ident(DELAY_FIELD)}) FROM {ALL_KINDS}"
                  f"{where(PILOT, DEVICE)} GROUP BY time($__interval) fill(none)",
                  "$measurement")], "s"),
        Panel("timeseries", "Events", "Events of a service device per hour and type.",
              [influx(f'SELECT count("value") FROM {quote_ident(EVENT_MEASUREMENT)}'
                      f'{where(PILOT, DEVICE)} GROUP BY time(1h), "type" fill(none)',
                      "$tag_type")], "suffix: events",
              custom={"drawStyle": "bars", "stacking": {"mode": "normal"}}),
    ]
    variables = [
        pilot_variable(), gateway_variable(multi=False),
        query_variable("device", "Device", 'SHOW TAG VALUES WITH KEY = "device" WHERE '
                       f"{PILOT} AND \"gateway\" = '$gateway'"),
        query_variable("kind", "Kind", f"SHOW MEASUREMENTS WHERE {PILOT} AND "
                       f"{DEVICE}", regex=_NOT_KINDS),
        query_variable("metric", "Metric", 'SHOW FIELD KEYS FROM "$kind"', multi=True,
                       regex=_NOT_METRICS),
    ]
    return dashboard("citypilot-device", "citypilot — Device drill-down", "One device: "
                     "every metric, its status, battery, radio and spool.", "now-24h",
                     variables, [metrics, *_status_panels(), *others], ["device"])
