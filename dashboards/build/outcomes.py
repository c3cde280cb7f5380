"""The environment-outcomes and the device drill-down dashboards.

Limit values are drawn as thresholds: the NO2 hourly and PM10 daily limits are the ones the
KPIs compute with (`api/kpis/outcomes.py`); the others are named here with their source.
Hours and days in exceedance are counted in InfluxQL without a comparison operator on an
aggregate (InfluxQL has none in SELECT): `ceil((mean - limit) / 1e9)` is 1 for a mean above
the limit and 0 at or below it, for any mean within the registry's plausible range, so the
sum counts the exceedances and still answers 0 (a row, not an empty result) when there are
none.
"""

from __future__ import annotations

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
from api.kpis.catalog import NO2_HOURLY_LIMIT, PM10_DAILY_LIMIT
from ingest.model import DELAY_FIELD, EVENT_MEASUREMENT, STATUS_MEASUREMENT
from ingest.stores import number, quote_ident
from ingest.units import REGISTRY

PM25_ANNUAL_LIMIT = 25.0  # µg/m³, 2008/50/EC Annex XIV (the KPI's formula quotes it)
NO2_HOURS_ALLOWED = 18.0  # hours a year above the hourly limit, 2008/50/EC Annex XI
PM10_DAYS_ALLOWED = 35.0  # days a year above the daily limit, 2008/50/EC Annex XI
LDEN_THRESHOLD = 55.0  # dB(A): 2002/49/EC's mapping threshold (the directive sets no limit)
_HUGE = 1_000_000_000  # far above any plausible concentration: (mean - limit) / it < 1
STATION = '"gateway", "device"'
ALL_KINDS = "/.*/"
DEVICE = "\"gateway\" = '$gateway' AND \"device\" = '$device'"
_NOT_METRICS = f"/^(?!{DELAY_FIELD}$|time_source$).+$/"
_NOT_KINDS = f"/^(?!{EVENT_MEASUREMENT}$|{STATUS_MEASUREMENT}$).+$/"


def _exceedances(field: str, limit: float, every: str, local: str = "") -> str:
    inner = (f"SELECT ceil((mean({quote_ident(field)}) - {number(limit)}) / {_HUGE}) AS \"x\" "
             f"FROM {ALL_KINDS}{where(PILOT, GATEWAYS)} GROUP BY time({every}), {STATION} "
             f"fill(none){local}")
    return f'SELECT sum("x") FROM ({inner}) GROUP BY {STATION}'


def _mean(field: str, every: str, local: str = "") -> str:
    return (f"SELECT mean({quote_ident(field)}) FROM {ALL_KINDS}{where(PILOT, GATEWAYS)} "
            f"GROUP BY time({every}), {STATION} fill(none){local}")


def _stats() -> list[Panel]:
    no2, pm10, pm25, lden = (kpi(k) for k in ("no2_hourly_exceedances",
                                              "pm10_daily_exceedances", "pm25_mean",
                                              "noise_lden"))
    station = "$tag_gateway/$tag_device"
    return [
        Panel("stat", no2.title, kpi_text(no2), [influx(_exceedances(
            "no2", NO2_HOURLY_LIMIT, "1h"), station)], unit(no2.unit), width=6, height=5,
            limits=(NO2_HOURS_ALLOWED,), options=stat_options()),
        Panel("stat", pm10.title, kpi_text(pm10), [influx(_exceedances(
            "pm10", PM10_DAILY_LIMIT, "1d", f" {LOCAL}"), station)], unit(pm10.unit),
            width=6, height=5, limits=(PM10_DAYS_ALLOWED,), options=stat_options()),
        Panel("stat", pm25.title, kpi_text(pm25), [influx(
            f'SELECT mean("pm25") FROM {ALL_KINDS}{where(PILOT, GATEWAYS)} GROUP BY '
            f"{STATION}", station)], unit(pm25.unit), width=6, height=5,
            limits=(PM25_ANNUAL_LIMIT,), options=stat_options()),
        Panel("stat", lden.title, kpi_text(lden, "Threshold: the directive's 55 dB(A) "
                                           "mapping threshold. From the API (local "
                                           "day/evening/night windows)."),
              [api_kpi("noise_lden")], unit(lden.unit), width=6, height=5,
              limits=(LDEN_THRESHOLD,), options=stat_options()),
    ]


def _series() -> list[Panel]:
    station = "$tag_gateway/$tag_device"
    return [
        Panel("timeseries", "NO2, hourly mean", f"Hourly mean NO2 per station; the line is "
              f"the hourly limit value of {number(NO2_HOURLY_LIMIT)} µg/m³.",
              [influx(_mean("no2", "1h"), station)], metric_unit("no2"),
              limits=(NO2_HOURLY_LIMIT,)),
        Panel("timeseries", "PM10, daily mean", "Daily (local day) mean PM10 per station; "
              f"the line is the daily limit value of {number(PM10_DAILY_LIMIT)} µg/m³.",
              [influx(_mean("pm10", "1d", f" {LOCAL}"), station)], metric_unit("pm10"),
              limits=(PM10_DAILY_LIMIT,), custom={"drawStyle": "bars", "fillOpacity": 50}),
        Panel("timeseries", "PM2.5, hourly mean", "Hourly mean PM2.5 per station; the line "
              f"is the annual limit value of {number(PM25_ANNUAL_LIMIT)} µg/m³ (it applies "
              "to the year's mean, drawn for scale).", [influx(_mean("pm25", "1h"), station)],
              metric_unit("pm25"), limits=(PM25_ANNUAL_LIMIT,)),
        Panel("timeseries", "Noise LAeq, hourly", "Hourly energy mean of LAeq per station "
              "(10·log10 of the mean of 10^(LAeq/10)); the line is the 55 dB(A) mapping "
              "threshold.", [influx(
                  'SELECT 10 * log10(mean("e")) FROM (SELECT pow(10.0, "noise_laeq" / 10) AS '
                  f'"e" FROM {ALL_KINDS}{where(PILOT, GATEWAYS)}) WHERE $timeFilter GROUP BY '
                  f"time(1h), {STATION} fill(none)", station)], metric_unit("noise_laeq"),
              limits=(LDEN_THRESHOLD,)),
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
