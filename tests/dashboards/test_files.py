"""The files under dashboards/, checked without any server: generated files up to date,
provisioning that parses and links up, every KPI of the catalogue drawn with its own title,
formula and unit, and what the check substitutes into a query."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.app import route_paths
from api.kpis.definitions import KPIS
from dashboards.build import files
from dashboards.build.check import check_files
from dashboards.build.live import filter_values
from dashboards.build.panels import grafana_unit
from dashboards.build.substitute import TimeRange, Value, interpolate, references
from ingest.stores import rollup_database

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"


def test_the_committed_files_are_what_the_generator_makes() -> None:
    assert files.stale(DASHBOARDS) == [], (
        "dashboards/ is stale: run `citypilot dashboards generate` and commit the result")


def test_the_static_check_finds_nothing() -> None:
    problems, boards = check_files(DASHBOARDS, route_paths())
    assert [str(p) for p in problems] == []
    assert set(boards) == set(files.DASHBOARDS)


def test_an_influxdb_source_on_another_database_is_a_problem(tmp_path: Path) -> None:
    copy = tmp_path / "dashboards"
    shutil.copytree(DASHBOARDS, copy)
    path = copy / "provisioning" / "datasources" / "citypilot.yaml"
    path.write_text(path.read_text().replace("${INFLUXDB_DB}_rollups", "${INFLUXDB_DB}_rolups"))
    problems, _ = check_files(copy, route_paths())
    assert [str(p) for p in problems] == [
        "provisioning/datasources / citypilot-influxdb-rollups: jsonData.dbName "
        "'${INFLUXDB_DB}_rolups' is neither ${INFLUXDB_DB} nor ${INFLUXDB_DB}_rollups"]


def test_the_history_dashboard_reads_only_the_rollups_in_whole_hours() -> None:
    board = files.load_dashboards(DASHBOARDS)["history.json"]
    sources = {t["datasource"]["uid"] for p in board["panels"] for t in p["targets"]}
    assert sources == {"citypilot-influxdb-rollups", "citypilot-api"}
    for panel in board["panels"]:
        if panel["targets"][0]["datasource"]["uid"] == "citypilot-influxdb-rollups":
            assert panel["interval"] == "1h", panel["title"]
    live = [b for name, b in files.load_dashboards(DASHBOARDS).items() if name != "history.json"]
    assert {b["time"]["from"] for b in live} <= {"now-24h", "now-2d"}
    assert "citypilot-influxdb-rollups" not in json.dumps(live)


def _provisioning(folder: str) -> dict[str, Any]:
    return files.load_yaml_dir(DASHBOARDS, f"provisioning/{folder}")


def test_data_sources_have_fixed_uids_and_the_plugin_is_installed_by_compose() -> None:
    uids = files.datasources(DASHBOARDS)
    assert uids == {"citypilot-influxdb": "influxdb", "citypilot-influxdb-rollups": "influxdb",
                    "citypilot-prometheus": "prometheus",
                    "citypilot-api": "yesoreyeram-infinity-datasource"}
    [document] = _provisioning("datasources").values()
    for influx in (d for d in document["datasources"] if d["type"] == "influxdb"):
        assert influx["jsonData"].get("version", "InfluxQL") == "InfluxQL"
    # The rollups' database is named after the store's, as the rollup worker names it.
    assert files.influx_databases(DASHBOARDS, "city") == {
        "citypilot-influxdb": "city", "citypilot-influxdb-rollups": rollup_database("city")}
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    plugins = grafana["environment"]["GF_INSTALL_PLUGINS"]
    assert "yesoreyeram-infinity-datasource" in plugins


def test_every_variable_the_provisioning_expands_is_set_on_the_grafana_service() -> None:
    text = "".join(p.read_text() for p in (DASHBOARDS / "provisioning").rglob("*.yaml"))
    used = set(re.findall(r"\$\{([A-Z_]+)\}", text))
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert used >= {"INFLUXDB_URL", "INFLUXDB_DB", "INFLUXDB_USER", "INFLUXDB_PASSWORD",
                    "PROMETHEUS_URL", "API_URL"}
    assert used - set(grafana["environment"]) == set()


def test_compose_gives_grafanas_user_read_access_to_the_rollups_database() -> None:
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    env = grafana["environment"]
    rollups = files.influx_databases(DASHBOARDS, env["INFLUXDB_DB"])["citypilot-influxdb-rollups"]
    init = (ROOT / "deploy" / "influxdb" / "init" / "rollups.iql").read_text()
    assert f"CREATE DATABASE {rollups};" in init
    assert f"GRANT READ ON {rollups} TO {env['INFLUXDB_USER']};" in init


def test_the_dashboard_provider_reads_the_mounted_folder() -> None:
    [document] = _provisioning("dashboards").values()
    [provider] = document["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def test_alert_rules_use_provisioned_data_sources_and_a_contact_point() -> None:
    uids = set(files.datasources(DASHBOARDS)) | {"__expr__"}
    items = files.alert_items(DASHBOARDS)
    assert {item["datasourceUid"] for _, item in items} <= uids
    titles = {where.split(" / ", 1)[1] for where, _ in items}
    assert len(titles) == 6
    used = {item["datasourceUid"] for _, item in items}
    # InfluxDB, Prometheus and the API all carry a rule; none waits for the rollups.
    assert used == uids - {"citypilot-influxdb-rollups"}
    alerting = _provisioning("alerting")
    points = [cp["name"] for d in alerting.values() for cp in d.get("contactPoints", [])]
    assert points == ["citypilot-operators"]


def test_every_kpi_is_drawn_with_the_catalogues_title_formula_and_unit() -> None:
    panels = [p for board in files.load_dashboards(DASHBOARDS).values()
              for p in board["panels"]]
    by_title = {p["title"]: p for p in panels}
    for kpi in KPIS:
        panel = by_title.get(kpi.title)
        assert panel is not None, f"KPI {kpi.id} is on no dashboard"
        assert f"`{kpi.id}`" in panel["description"]
        assert kpi.formula[1:] in panel["description"]
        assert panel["fieldConfig"]["defaults"]["unit"] == grafana_unit(kpi.unit)


def test_every_panel_has_a_unit_and_a_description() -> None:
    panels = [p for board in files.load_dashboards(DASHBOARDS).values() for p in board["panels"]]
    assert len(panels) >= len(KPIS), "no dashboards or panels to check"
    for panel in panels:
        assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
        assert panel["description"], panel["title"]


RANGE = TimeRange(1_700_000_000_000, 1_700_086_400_000)  # one day


@pytest.mark.parametrize(("text", "expected"), [
    ("\"pilot\" = '$pilot'", "\"pilot\" = 'p-1'"),
    ("\"pilot\" = '${pilot}' AND [[pilot]]", "\"pilot\" = 'p-1' AND p-1"),
    ('"gateway" =~ /^$gateway$/', '"gateway" =~ /^(gw-01|gw\\.2)$/'),
    ('"kind" =~ /^$kind$/', '"kind" =~ /^air_quality$/'),
    ("WHERE $timeFilter", "WHERE time >= 1700000000000ms and time <= 1700086400000ms"),
    ("time >= ${__to}ms - 7d", "time >= 1700086400000ms - 7d"),
    ("GROUP BY time($__interval)", "GROUP BY time(5m)"),
    ("time($__interval) $__interval_ms", "time(5m) 300000"),
    ("start=${__from:date:iso}", "start=2023-11-14T22:13:20.000Z"),
    ("$__range_s $unknown", "86400 $unknown"),
])
def test_interpolation_as_the_influxdb_data_source_does_it(text: str, expected: str) -> None:
    values = {"pilot": Value(("p-1",)), "gateway": Value(("gw-01", "gw.2"), multi=True),
              "kind": Value(("air_quality",), multi=True)}
    assert interpolate(text, values, RANGE) == expected


def test_a_panels_min_interval_bounds_the_interval() -> None:
    assert interpolate("time($__interval)", {}, RANGE.of_panel({"interval": "1h"})) == "time(1h)"
    assert interpolate("time($__interval)", {}, RANGE.of_panel({"interval": "1m"})) == "time(5m)"
    assert RANGE.of_panel({}) == RANGE


def test_references_leave_out_the_macros() -> None:
    assert references("$pilot ${gateway} [[kind]] $timeFilter ${__to}ms $__interval") == {
        "pilot", "gateway", "kind"}


@pytest.mark.parametrize(("start", "span_s"), [("now-24h", 86400), ("now-7d", 604800),
                                                ("now-30d", 2_592_000), ("now", 0)])
def test_relative_ranges(start: str, span_s: int) -> None:
    rng = TimeRange.relative(start, "now", 10**13)
    assert (rng.to_ms, rng.to_ms - rng.from_ms) == (10**13, span_s * 1000)


@pytest.mark.parametrize(("regex", "expected"), [
    ("", ["noise", "device_status", "air_quality"]),
    ("/^(?!device_status$).+$/", ["noise", "air_quality"]),
    ("/^(?!event$|device_status$).+$/", ["noise", "air_quality"]),
    ("/^(a.*)_quality$/", ["air"]),
    ("/NOISE/i", ["noise"]),
])
def test_variable_values_are_filtered_as_grafana_does(regex: str, expected: list[str]) -> None:
    found = ["noise", "device_status", "air_quality", "noise"]
    assert filter_values(found, regex, sort=False) == expected
    assert filter_values(found, regex, sort=True) == sorted(expected)
