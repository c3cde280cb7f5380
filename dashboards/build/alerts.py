"""Grafana unified-alerting rules, provisioned as a file (`provisioning/alerting/rules.yaml`).

Each rule is a query, an optional reduction and a threshold (Grafana's server-side
expressions, data source `__expr__`). The thresholds are citypilot's: the NO2 hourly limit
value is the one the KPI computes with; the dead-letter rate, the spool windows and the
`for` durations are operational defaults, named here and in `dashboards/README.md`.
The contact point is a placeholder in `provisioning/alerting/contact-points.yaml`.
"""

from __future__ import annotations

from typing import Any

from api.kpis.definitions import BY_ID
from dashboards.build.panels import API, EXPRESSION_UID, INFLUX, PROMETHEUS, Json
from ingest.model import DEAD_LETTER_MEASUREMENT, STATUS_MEASUREMENT
from ingest.stores import number, quote_ident

FOLDER = "citypilot"
DEAD_LETTERS_PER_MINUTE = 1.0  # over the last 15 minutes, per reason
DEAD_LETTER_WINDOW_S = 900
SPOOL_WINDOW_S = 1800


def _influx(query: str, window_s: int) -> Json:
    return {"refId": "A", "relativeTimeRange": {"from": window_s, "to": 0},
            "datasourceUid": INFLUX["uid"],
            "model": {"refId": "A", "query": query, "rawQuery": True,
                      "resultFormat": "time_series", "intervalMs": 60_000,
                      "maxDataPoints": 43_200}}


def _reduce(source: str = "A") -> Json:
    return {"refId": "B", "datasourceUid": EXPRESSION_UID, "relativeTimeRange": {
        "from": 0, "to": 0}, "model": {"refId": "B", "type": "reduce", "expression": source,
                                       "reducer": "last", "settings": {"mode": "dropNN"}}}


def _threshold(source: str, above: float) -> Json:
    return {"refId": "C", "datasourceUid": EXPRESSION_UID, "relativeTimeRange": {
        "from": 0, "to": 0}, "model": {"refId": "C", "type": "threshold", "expression": source,
                                       "conditions": [{"evaluator": {"type": "gt",
                                                                     "params": [above]}}]}}


def _rule(uid: str, title: str, data: list[Json], for_: str, summary: str,
          severity: str = "warning") -> Json:
    return {"uid": uid, "title": title, "condition": "C", "data": data,
            "noDataState": "OK", "execErrState": "Error", "for": for_,
            "annotations": {"summary": summary},
            "labels": {"service": "citypilot", "severity": severity}}


def _silent_devices() -> Json:
    # The registry holds each device's expected interval: the API answers "online" as
    # "seen within twice its interval", so the rule counts the devices that are not.
    query = {"refId": "A", "relativeTimeRange": {"from": 600, "to": 0},
             "datasourceUid": API["uid"],
             "model": {"refId": "A", "type": "json", "source": "url", "parser": "backend",
                       "format": "table", "url": "/api/v1/devices",
                       "url_options": {"method": "GET",
                                       "params": [{"key": "online", "value": "false"}]},
                       "root_selector": "", "columns": [
                           {"selector": "pilot", "text": "pilot", "type": "string"},
                           {"selector": "id", "text": "id", "type": "string"}],
                       "summarizeExpression": "count(id)", "summarizeBy": "pilot"}}
    return _rule("citypilot-device-silent", "Devices silent for more than twice their "
                 "reporting interval", [query, _threshold("A", 0)], "10m",
                 "{{ $values.A }} device(s) of pilot {{ $labels.pilot }} sent nothing for "
                 "more than twice their reporting interval (fleet dashboard: Silent "
                 "devices).")


def _no2() -> Json:
    limit = BY_ID["no2_hourly_exceedances"].threshold
    query = ('SELECT mean("no2") FROM /.*/ WHERE $timeFilter GROUP BY "pilot", "gateway", '
             '"device"')
    return _rule("citypilot-no2-hourly", f"NO2 hourly mean above {number(limit)} "
                 "µg/m³", [_influx(query, 3600), _reduce(), _threshold("B", limit)],
                 "0s", "NO2 at {{ $labels.pilot }}/{{ $labels.gateway }}/{{ $labels.device }}"
                 " averaged {{ $values.B }} µg/m³ over the last hour (EU hourly limit "
                 f"{number(limit)}).", "critical")


def _dead_letters() -> Json:
    minutes = DEAD_LETTER_WINDOW_S // 60
    query = (f'SELECT count("topic") / {minutes} FROM {quote_ident(DEAD_LETTER_MEASUREMENT)} '
             'WHERE $timeFilter GROUP BY "reason"')
    return _rule("citypilot-dead-letters", "Dead-letter rate above "
                 f"{number(DEAD_LETTERS_PER_MINUTE)} per minute",
                 [_influx(query, DEAD_LETTER_WINDOW_S), _reduce(),
                  _threshold("B", DEAD_LETTERS_PER_MINUTE)], "5m",
                 "{{ $values.B }} dead letters per minute with reason {{ $labels.reason }} "
                 f"over the last {minutes} minutes (`citypilot deadletters list`).")


def _prometheus(expr: str) -> Json:
    """An instant query (nothing to reduce) over the collectors' metrics."""
    return {"refId": "A", "relativeTimeRange": {"from": 900, "to": 0},
            "datasourceUid": PROMETHEUS["uid"],
            "model": {"refId": "A", "expr": expr, "instant": True, "range": False,
                      "intervalMs": 60_000}}


def _collector_spool() -> Json:
    return _rule("citypilot-collector-spool", "Collector spool growing",
                 [_prometheus("deriv(citypilot_spool_depth_points[10m])"),
                  _threshold("A", 0)], "10m",
                 "The spool of collector {{ $labels.instance }} has grown for 10 minutes: "
                 "the store is not taking writes (collector log, `/readyz`).")


def _broker_drops() -> Json:
    return _rule("citypilot-broker-drops", "Broker dropping messages",
                 [_prometheus("delta(citypilot_broker_dropped_messages[10m])"),
                  _threshold("A", 0)], "0s",  # every drop is a loss: fire at once
                 "The broker {{ $labels.broker }} dropped messages for full client queues "
                 "in the last 10 minutes (seen by collector {{ $labels.instance }}): raise "
                 "`max_queued_messages` (Mosquitto) and look for a slow or absent collector.",
                 severity="critical")


def _gateway_spool() -> Json:
    query = (f'SELECT last("spool_depth") - first("spool_depth") FROM '
             f'{quote_ident(STATUS_MEASUREMENT)} WHERE $timeFilter GROUP BY "pilot", '
             '"gateway", "device"')
    return _rule("citypilot-gateway-spool", "Gateway spool growing",
                 [_influx(query, SPOOL_WINDOW_S), _reduce(), _threshold("B", 0)], "15m",
                 "The spool of gateway {{ $labels.pilot }}/{{ $labels.gateway }} grew by "
                 "{{ $values.B }} messages in 30 minutes: its uplink or the broker is not "
                 "taking them.")


def rules() -> dict[str, Any]:
    """The alerting provisioning document (`apiVersion: 1`, one group per concern)."""
    def group(name: str, interval: str, members: list[Json]) -> Json:
        return {"orgId": 1, "name": name, "folder": FOLDER, "interval": interval,
                "rules": members}

    return {"apiVersion": 1, "groups": [
        group("fleet", "1m", [_silent_devices(), _dead_letters(), _gateway_spool()]),
        group("collectors", "1m", [_collector_spool(), _broker_drops()]),
        group("air quality", "5m", [_no2()]),
    ]}
