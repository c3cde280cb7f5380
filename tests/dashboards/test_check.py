"""`citypilot dashboards check` against a real InfluxDB holding simulated data and its
rollups (`conftest.py`): the check must pass with every InfluxQL panel answering rows, and
must name the panel when one is broken (a misspelt measurement, a data source uid nobody
provisioned), and the store when it cannot be reached.
"""

from __future__ import annotations

import json
import shutil
import socket
import uuid
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from citypilot.cli import app
from tests.servers import InfluxDB

ROOT = Path(__file__).resolve().parents[2]


def _check(store_url: str, directory: Path) -> tuple[int, str, dict[str, object]]:
    result = CliRunner().invoke(app, ["dashboards", "check", "--dir", str(directory),
                                      "--json"], env={"CITYPILOT_STORE_URL": store_url})
    report = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, result.stderr, report


def test_every_influxql_panel_answers_rows_on_simulated_data(store_url: str) -> None:
    code, err, report = _check(store_url, ROOT / "dashboards")
    assert code == 0, err
    assert report["ok"] is True and report["problems"] == []
    assert isinstance(report["queries"], int) and report["queries"] >= 40


def _broken(tmp_path: Path, name: str, change: Callable[[dict[str, object]], None]) -> Path:
    copy = tmp_path / "dashboards"
    shutil.copytree(ROOT / "dashboards", copy)
    board = json.loads((copy / "json" / name).read_text())
    change(board)
    (copy / "json" / name).write_text(json.dumps(board))
    return copy


def _panel(board: dict[str, object], title: str) -> dict[str, object]:
    panels = board["panels"]
    assert isinstance(panels, list)
    return next(p for p in panels if p["title"] == title)


def test_a_misspelt_measurement_fails_naming_the_panel(store_url: str, tmp_path: Path) -> None:
    def misspell(board: dict[str, object]) -> None:
        [target] = _panel(board, "Gateway spool depth")["targets"]  # type: ignore[misc]
        target["query"] = target["query"].replace('"device_status"', '"device_stauts"')

    code, err, report = _check(store_url, _broken(tmp_path, "fleet.json", misspell))
    assert code == 1
    [problem] = report["problems"]  # type: ignore[misc]
    assert problem["where"] == "citypilot — Technology push / fleet / Gateway spool depth [A]"
    assert "no rows" in problem["message"] and "device_stauts" in problem["message"]
    assert "FAIL citypilot — Technology push / fleet / Gateway spool depth" in err


def test_an_unprovisioned_datasource_uid_fails_naming_the_panel(store_url: str,
                                                                tmp_path: Path) -> None:
    def wrong_uid(board: dict[str, object]) -> None:
        panel = _panel(board, "NO2, hourly mean")
        panel["datasource"] = panel["targets"][0]["datasource"] = {  # type: ignore[index]
            "type": "influxdb", "uid": "citypilot-influx"}

    code, _, report = _check(store_url, _broken(tmp_path, "environment.json", wrong_uid))
    assert code == 1
    wheres = {p["where"] for p in report["problems"]}  # type: ignore[attr-defined]
    assert wheres == {"citypilot — Environment outcomes / NO2, hourly mean",
                      "citypilot — Environment outcomes / NO2, hourly mean [A]"}
    assert all("'citypilot-influx' is not in the provisioning" in p["message"]
               for p in report["problems"])  # type: ignore[attr-defined]


def test_a_sqlite_store_is_refused_with_the_fix(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["dashboards", "check"], env={
        "CITYPILOT_STORE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
    assert result.exit_code == 2
    assert "--offline" in result.stderr


def test_an_unreachable_store_fails_once_naming_it() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code, err, report = _check(f"influxdb://127.0.0.1:{port}/nowhere", ROOT / "dashboards")
    assert code == 1
    [problem] = report["problems"]  # type: ignore[misc]
    assert problem["where"] == "store" and "cannot reach InfluxDB" in problem["message"]
    assert "FAIL store: cannot reach InfluxDB" in err
    assert report["queries"] == 0


def test_the_check_creates_no_database(influxdb: InfluxDB) -> None:
    name = f"absent_{uuid.uuid4().hex[:8]}"
    code, _, report = _check(influxdb.url(name), ROOT / "dashboards")
    assert code == 1 and report["problems"]  # no data: variables resolve to nothing
    listed = influxdb.query("SHOW DATABASES")["results"][0]["series"][0]["values"]  # type: ignore[index]
    assert [name] not in listed
