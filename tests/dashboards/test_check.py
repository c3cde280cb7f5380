"""`citypilot dashboards check` against a real InfluxDB holding simulated data.

A short simulated run (one pilot, two gateways, five devices each, two days of backfill, a
few faults for dead letters) goes through a real Mosquitto and a real collector into a fresh
database; then the check must pass with every InfluxQL panel answering rows, and must name
the panel when one is broken (a misspelt measurement, a data source uid nobody provisioned).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from citypilot.cli import app
from simulators.runner import SimulateOptions, run_async
from tests.collectors import collector
from tests.servers import InfluxDB, Mosquitto
from tests.support import eventually

ROOT = Path(__file__).resolve().parents[2]


async def _simulate(mqtt_url: str, store_url: str, spool: Path) -> None:
    async with collector(mqtt_url, store_url, spool) as c:
        summary = await run_async(SimulateOptions(
            pilots=1, gateways=2, devices=5, rate=0, duration_s=1.0, backfill_s=2 * 86400,
            faults=0.05, mqtt_url=mqtt_url, pilot_prefix=f"d{uuid.uuid4().hex[:8]}"))
        assert summary.acked == summary.published > 1000

        def received() -> bool:
            got = c.metrics.registry.get_sample_value("citypilot_messages_received_total")
            return (got or 0) >= summary.published

        await eventually(received, timeout=30)


@pytest.fixture(scope="module")
def store_url(influxdb: InfluxDB, mosquitto: Mosquitto,
              tmp_path_factory: pytest.TempPathFactory) -> str:
    url = influxdb.url(f"dash_{uuid.uuid4().hex[:12]}")
    asyncio.run(_simulate(mosquitto.url, url, tmp_path_factory.mktemp("spool")))
    return url


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
