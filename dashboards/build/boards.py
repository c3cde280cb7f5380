"""The end-user pull and the technology push (fleet) dashboards.

InfluxQL wherever it can express the figure (counts, distinct users, percentiles, last seen,
spool depth); the API (through the Infinity data source) where it cannot: set operations over
rolling weeks (returning users, week-over-week growth) and figures that need the registry
(capacities, expected reporting intervals, registered devices). Daily buckets use `tz()` with
the dashboard's `timezone` variable, so that days are the pilot's local days as the KPIs
define them; the `$timeFilter` of an outer query over a subquery is left out on purpose
(InfluxDB 1.x drops every row of such an outer query when its range starts after the first
inner bucket, and the inner query already bounds the time).
"""

from __future__ import annotations

from api.kpis.definitions import USE_TYPES
from dashboards.build.panels import (
    Json,
    Panel,
    api,
    api_kpi,
    dashboard,
    influx,
    kpi,
    kpi_text,
    metric_unit,
    prometheus,
    query_variable,
    stat_options,
    textbox,
    unit_overrides,
)
from dashboards.build.panels import grafana_unit as unit
from ingest.model import DEAD_LETTER_MEASUREMENT, DELAY_FIELD, EVENT_MEASUREMENT
from ingest.model import STATUS_MEASUREMENT as STATUS
from ingest.stores import conditions, quote_ident

PILOT = "\"pilot\" = '$pilot'"
GATEWAYS = '"gateway" =~ /^$gateway$/'
SERVICES = '"service" =~ /^$service$/'
KINDS = "/^$kind$/"
IS_USE = conditions((("type", USE_TYPES),), None, None)[0]
EVENTS = quote_ident(EVENT_MEASUREMENT)
DELAY = quote_ident(DELAY_FIELD)
LOCAL = "tz('$timezone')"
NOT_STATUS = f"/^(?!{STATUS}$).+$/"


def where(*parts: str) -> str:
    return " WHERE " + " AND ".join((*parts, "$timeFilter"))


def pilot_variable() -> Json:
    return query_variable("pilot", "Pilot", 'SHOW TAG VALUES WITH KEY = "pilot"')


def gateway_variable(multi: bool = True) -> Json:
    return query_variable("gateway", "Gateway",
                          f'SHOW TAG VALUES WITH KEY = "gateway" WHERE {PILOT}', multi=multi)


def timezone_variable() -> Json:
    return textbox("timezone", "Time zone", "UTC", "The pilot's IANA time zone (e.g. "
                   "Europe/Madrid): daily figures count local days, as the KPIs do.")


def end_user_pull() -> Json:
    uses = where(PILOT, SERVICES, IS_USE)
    panels = [
        *(Panel("stat", kpi(k).title, kpi_text(kpi(k), "Latest day of the range; from the "
                                               "API (needs the registry or set operations)."),
                [api_kpi(k)], unit(kpi(k).unit), width=6, height=5, options=stat_options())
          for k in ("active_users_weekly", "returning_user_rate", "usage_growth_wow",
                    "peak_demand_ratio")),
        Panel("timeseries", kpi("usage_events").title, kpi_text(kpi("usage_events"),
                                                                "Per local day."),
              [influx(f"SELECT count(\"value\") FROM {EVENTS}{uses} GROUP BY time(1d), "
                      f'"service" fill(0) {LOCAL}', "$tag_service")],
              unit(kpi("usage_events").unit), custom={"drawStyle": "bars", "fillOpacity": 60}),
        Panel("timeseries", kpi("active_users_daily").title, kpi_text(
            kpi("active_users_daily"), "Per local day."),
            [influx(f'SELECT count(distinct("user")) FROM {EVENTS}{where(PILOT, IS_USE)} '
                    f"GROUP BY time(1d) fill(0) {LOCAL}", "users")],
            unit(kpi("active_users_daily").unit), custom={"drawStyle": "bars",
                                                          "fillOpacity": 60}),
        Panel("timeseries", "Uses per hour", "Uses (session starts and one-shot uses) per "
              f"hour and service: the demand behind \"{kpi('peak_demand_ratio').title}\". "
              f"Unit: {kpi('usage_events').unit}.",
              [influx(f'SELECT count("value") FROM {EVENTS}{uses} GROUP BY time(1h), '
                      '"service" fill(0)', "$tag_service")],
              unit(kpi("usage_events").unit)),
        Panel("timeseries", kpi("utilisation").title, kpi_text(kpi("utilisation"),
                                                               "From the API."),
              [api_kpi("utilisation")], unit(kpi("utilisation").unit)),
        Panel("timeseries", "Occupancy, hourly mean", "Mean `occupancy` per hour and "
              f"telemetry kind: the input of \"{kpi('utilisation').title}\", before the "
              "capacity weighting.",
              [influx(f'SELECT mean("occupancy") FROM /.*/{where(PILOT)} GROUP BY time(1h) '
                      "fill(none)", "$measurement")], metric_unit("occupancy")),
        Panel("timeseries", kpi("usage_per_device").title, kpi_text(kpi("usage_per_device"),
                                                                    "From the API."),
              [api_kpi("usage_per_device")], unit(kpi("usage_per_device").unit)),
    ]
    variables = [pilot_variable(), query_variable(
        "service", "Service", f'SHOW TAG VALUES FROM {EVENTS} WITH KEY = "service" WHERE '
        f"{PILOT}", multi=True), timezone_variable()]
    return dashboard("citypilot-pull", "citypilot — End-user pull", "Is the deployed "
                     "technology used? Uses, users, growth and utilisation per service.",
                     "now-2d", variables, panels, ["end-user pull"])


def _fleet_stats() -> list[Panel]:
    out = [Panel("stat", kpi(k).title, kpi_text(kpi(k), "From the API (needs the "
                                                "registry)."), [api_kpi(k)],
                 unit(kpi(k).unit), width=4, height=5, options=stat_options())
           for k in ("devices_deployed", "devices_online", "availability",
                     "data_completeness", "rejection_rate")]
    p95 = kpi("ingest_delay_p95")
    out.append(Panel("stat", p95.title, kpi_text(p95, "Over the whole range."),
                     [influx(f"SELECT percentile({DELAY}, 95) FROM {KINDS}"
                             f"{where(PILOT, GATEWAYS)}", "$measurement")],
                     unit(p95.unit), width=4, height=5, options=stat_options()))
    return out


def _fleet_tables() -> list[Panel]:
    silent = api("/api/v1/devices", {"pilot": "$pilot", "online": "false"},
                 [("gateway", "string"), ("id", "string"), ("kind", "string"),
                  ("last_seen", "timestamp"), ("interval_s", "number"),
                  ("battery", "number"), ("state", "string")], table=True)
    return [
        Panel("table", "Silent devices", "Devices with no reading or event within twice "
              "their expected reporting interval (the registry's, or the default), oldest "
              "last seen first; from the API (`/api/v1/devices?online=false`, an operator "
              "key).", [silent], "none", height=9,
              overrides=[*unit_overrides(["battery"]),
                         {"matcher": {"id": "byName", "options": "interval_s"},
                          "properties": [{"id": "unit", "value": "s"}]}],
              options={"sortBy": [{"displayName": "last_seen", "desc": False}]}),
        Panel("table", "Last reading per device", "When each device last sent a reading "
              "or event in the range (Time), and that message's ingest delay.",
              [influx(f'SELECT last({DELAY}) AS "ingest delay" FROM {KINDS}'
                      f'{where(PILOT, GATEWAYS)} GROUP BY "gateway", "device"', table=True)],
              "s", height=9, options={"sortBy": [{"displayName": "Time", "desc": False}]}),
    ]


def _fleet_series() -> list[Panel]:
    p95 = kpi("ingest_delay_p95")
    return [
        Panel("timeseries", "Devices reporting, per kind", "Devices with at least one "
              "reading or event in the hour (the raw side of availability).",
              [influx(f'SELECT count("n") FROM (SELECT count({DELAY}) AS "n" FROM {KINDS}'
                      f'{where(PILOT, GATEWAYS)} GROUP BY time(1h), "gateway", "device" '
                      "fill(none)) WHERE $timeFilter GROUP BY time(1h) fill(0)",
                      "$measurement")], "suffix: devices"),
        Panel("timeseries", "Readings per gateway", "Readings and events stored per hour "
              "(the raw side of completeness).",
              [influx(f"SELECT count({DELAY}) FROM {KINDS}{where(PILOT, GATEWAYS)} GROUP BY "
                      'time(1h), "gateway" fill(0)', "$tag_gateway $measurement")],
              "suffix: readings"),
        Panel("timeseries", "Dead letters by reason", "Rejected messages of every pilot and "
              "source (a dead letter has no pilot tag), per reason; "
              "`citypilot deadletters list` shows them.",
              [influx(f'SELECT count("topic") FROM {quote_ident(DEAD_LETTER_MEASUREMENT)} '
                      'WHERE $timeFilter GROUP BY time($__interval), "reason" fill(none)',
                      "$tag_reason")], "suffix: messages",
              custom={"drawStyle": "bars", "stacking": {"mode": "normal"}}),
        Panel("timeseries", p95.title, kpi_text(p95), [influx(
            f"SELECT percentile({DELAY}, 95) FROM {KINDS}{where(PILOT, GATEWAYS)} GROUP BY "
            "time($__interval) fill(none)", "$measurement")], unit(p95.unit)),
        Panel("timeseries", "Gateway spool depth", "Messages waiting in each gateway's "
              "store-and-forward spool (its status messages); growth means the uplink or "
              "the broker is not taking them.",
              [influx(f'SELECT max("spool_depth") FROM {quote_ident(STATUS)}'
                      f'{where(PILOT, GATEWAYS)} GROUP BY time($__interval), "gateway", '
                      '"device" fill(none)', "$tag_device")], metric_unit("spool_depth")),
        Panel("timeseries", "Collector spool depth", "Points waiting in each collector's "
              "on-disk spool (Prometheus): growth means the store is not taking writes.",
              [prometheus("citypilot_spool_depth_points", "{{instance}}")],
              "suffix: points"),
    ]


def fleet() -> Json:
    variables = [pilot_variable(), gateway_variable(), query_variable(
        "kind", "Kind", f"SHOW MEASUREMENTS WHERE {PILOT}", multi=True, regex=NOT_STATUS)]
    return dashboard("citypilot-fleet", "citypilot — Technology push / fleet", "Does the "
                     "deployed technology work? Devices, availability, completeness, "
                     "rejections, ingest delay and spools.", "now-24h", variables,
                     [*_fleet_stats(), *_fleet_tables(), *_fleet_series()],
                     ["technology push"])
