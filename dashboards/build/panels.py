"""Builders for Grafana's classic dashboard JSON: data sources, targets, variables, panels.

Plain dicts, because the dashboard JSON is the product (committed, diffed, provisioned); the
builders only keep the repeated parts in one place. KPI panels take their title, description
and unit from the KPI catalogue (`kpi_text`, `unit_of`), never from text written here; raw
metric panels take their unit from the metric registry (`ingest/units.py`).

Data source uids are fixed in the provisioning (`dashboards/provisioning/datasources/`); the
check compares every uid a panel names with that file, not with these constants.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.kpis.definitions import BY_ID, Kpi
from ingest.units import REGISTRY

Json = dict[str, Any]

INFLUX = {"type": "influxdb", "uid": "citypilot-influxdb"}
ROLLUPS = {"type": "influxdb", "uid": "citypilot-influxdb-rollups"}  # `<db>_rollups`
PROMETHEUS = {"type": "prometheus", "uid": "citypilot-prometheus"}
API = {"type": "yesoreyeram-infinity-datasource", "uid": "citypilot-api"}
EXPRESSION_UID = "__expr__"  # Grafana's server-side expressions (alert rules)

# Registry/catalogue units that Grafana knows by an id; any other unit is shown as a suffix
# (`suffix: µg/m³`), spelled exactly as the catalogue or the registry spells it.
_GRAFANA_UNITS = {
    "%": "percent", "1": "percentunit", "s": "s", "°C": "celsius", "hPa": "pressurehpa",
    "m/s": "velocityms", "km/h": "velocitykmh", "W": "watt", "Wh": "watth", "kWh": "kwatth",
    "V": "volt", "dBm": "dBm", "dB": "dB", "lx": "lux", "m³": "m3", "ppm": "ppm",
    "mm": "lengthmm",
}
_GRID_WIDTH = 24


def grafana_unit(unit: str) -> str:
    """A Grafana unit id for a catalogue or registry unit."""
    return _GRAFANA_UNITS.get(unit) or f"suffix: {unit}"


def metric_unit(name: str) -> str:
    """The Grafana unit of a registered metric (`none` for a metric the registry lacks)."""
    metric = REGISTRY.get(name)
    return grafana_unit(metric.unit) if metric is not None else "none"


def kpi_text(kpi: Kpi, how: str = "") -> str:
    """A KPI panel's description: the catalogue's formula, unit, reference and id."""
    text = (f"{kpi.formula[0].upper()}{kpi.formula[1:]}. Unit: {kpi.unit}. "
            f"{kpi.family.value.capitalize()} KPI `{kpi.id}`; reference: {kpi.reference}.")
    return f"{text} {how}" if how else text


def kpi(kpi_id: str) -> Kpi:
    return BY_ID[kpi_id]


# -- targets -------------------------------------------------------------------------------

def influx(query: str, alias: str = "", table: bool = False, source: Json = INFLUX) -> Json:
    """A raw InfluxQL target (the data source's InfluxQL mode), on the pilot data or, with
    `source=ROLLUPS`, on the rollups."""
    target: Json = {"datasource": source, "query": query, "rawQuery": True,
                    "resultFormat": "table" if table else "time_series"}
    if alias:
        target["alias"] = alias
    return target


def prometheus(expr: str, legend: str = "") -> Json:
    return {"datasource": PROMETHEUS, "expr": expr, "legendFormat": legend, "range": True}


def api(path: str, params: dict[str, str], columns: list[tuple[str, str]],
        *, root: str = "", table: bool = False) -> Json:
    """A JSON-over-HTTP target on citypilot's API (Infinity, backend parser: alerting-ready).

    `path` is relative to the data source's base URL; `columns` are (selector, type)."""
    return {"datasource": API, "type": "json", "source": "url", "parser": "backend",
            "format": "table" if table else "timeseries", "url": path,
            "url_options": {"method": "GET",
                            "params": [{"key": k, "value": v} for k, v in params.items()]},
            "root_selector": root,
            "columns": [{"selector": s, "text": s, "type": t} for s, t in columns]}


def api_kpi(kpi_id: str) -> Json:
    """The KPI's values per local day of the dashboard's range, one series per dimension."""
    columns = [("start", "timestamp"), ("value", "number")]
    columns += [(d, "string") for d in kpi(kpi_id).dimensions]
    return api(f"/api/v1/kpis/{kpi_id}", {"pilot": "$pilot", "start": "${__from:date:iso}",
                                          "end": "${__to:date:iso}", "grain": "day"},
               columns, root="values")


# -- variables -----------------------------------------------------------------------------

def query_variable(name: str, label: str, query: str, *, multi: bool = False,
                   regex: str = "") -> Json:
    """A variable filled by an InfluxQL `SHOW ...` query; `multi` also offers "All"."""
    return {"name": name, "label": label, "type": "query", "datasource": INFLUX,
            "query": query, "definition": query, "refresh": 2, "regex": regex, "sort": 1,
            "multi": multi, "includeAll": multi, "hide": 0, "options": [],
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if multi
            else {}}


def textbox(name: str, label: str, default: str, description: str) -> Json:
    return {"name": name, "label": label, "type": "textbox", "query": default,
            "description": description, "hide": 0,
            "current": {"selected": False, "text": default, "value": default},
            "options": [{"selected": True, "text": default, "value": default}]}


# -- panels --------------------------------------------------------------------------------

def thresholds(*limits: float) -> Json:
    """Green below the limits, red from the highest, orange from any lower one (the stricter
    figure of a later regime)."""
    steps: list[Json] = [{"color": "green", "value": None}]
    steps += [{"color": "red" if i == len(limits) - 1 else "orange", "value": limit}
              for i, limit in enumerate(sorted(limits))]
    return {"mode": "absolute", "steps": steps}


@dataclass
class Panel:
    """One panel before layout: `width` and `height` in grid units."""

    type: str
    title: str
    description: str
    targets: list[Json]
    unit: str
    width: int = 12
    height: int = 8
    limits: tuple[float, ...] = ()
    overrides: list[Json] = field(default_factory=list)
    mappings: list[Json] = field(default_factory=list)
    options: Json = field(default_factory=dict)
    custom: Json = field(default_factory=dict)
    extra: Json = field(default_factory=dict)

    def render(self, pid: int, x: int, y: int) -> Json:
        for i, target in enumerate(self.targets):
            target["refId"] = chr(ord("A") + i)
        sources = {t["datasource"]["uid"] for t in self.targets}
        datasource = self.targets[0]["datasource"] if len(sources) == 1 else {
            "type": "datasource", "uid": "-- Mixed --"}
        custom = dict(self.custom)
        if self.limits and self.type == "timeseries":
            custom.setdefault("thresholdsStyle", {"mode": "line"})
        return {"id": pid, "type": self.type, "title": self.title,
                "description": self.description, "datasource": datasource,
                "gridPos": {"x": x, "y": y, "w": self.width, "h": self.height},
                "targets": self.targets, "options": self.options, **self.extra,
                "fieldConfig": {"defaults": {"unit": self.unit, "custom": custom,
                                             "mappings": self.mappings,
                                             "thresholds": thresholds(*self.limits)},
                                "overrides": self.overrides}}


def stat_options() -> Json:
    return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value", "graphMode": "area", "textMode": "auto",
            "justifyMode": "auto", "orientation": "auto"}


def layout(panels: list[Panel]) -> list[Json]:
    """Left to right, top to bottom, a new row when the next panel does not fit."""
    out: list[Json] = []
    x = y = row_height = 0
    for pid, p in enumerate(panels, start=1):
        if x + p.width > _GRID_WIDTH:
            x, y, row_height = 0, y + row_height, 0
        out.append(p.render(pid, x, y))
        x += p.width
        row_height = max(row_height, p.height)
    return out


def unit_overrides(names: list[str], prefix: str = "") -> list[Json]:
    """Per-field units from the registry, matched on the field's display name."""
    return [{"matcher": {"id": "byRegexp", "options": f"^{prefix}{name}$"},
             "properties": [{"id": "unit", "value": metric_unit(name)}]} for name in names]


def dashboard(uid: str, title: str, description: str, time_from: str,
              variables: list[Json], panels: list[Panel], tags: list[str]) -> Json:
    return {
        "uid": uid, "title": title, "description": description, "tags": ["citypilot", *tags],
        "editable": True, "graphTooltip": 1, "schemaVersion": 39, "version": 1,
        "timezone": "browser", "refresh": "", "time": {"from": time_from, "to": "now"},
        "templating": {"list": variables}, "annotations": {"list": []},
        "links": [{"title": "citypilot", "type": "dashboards", "tags": ["citypilot"],
                   "asDropdown": True, "includeVars": True, "keepTime": True}],
        "panels": layout(panels),
    }
