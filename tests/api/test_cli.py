"""`citypilot registry`, `apikey` and `kpi` as a user runs them: data on stdout, notes on
stderr, the key printed once, exports of the hand-built pilot's KPIs."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from api.catalog import Catalog
from api.kpis.definitions import KPIS
from citypilot.cli import app
from ingest.stores import open_store
from tests.contract.test_kpis import seed

REGISTRY = """
pilots:
  - id: p1
    timezone: Europe/Berlin
    lighting_baseline_kwh_per_day: 10
    services: [{id: parking, capacity: 4}]
    devices:
      - {id: aq1, gateway: g1, kind: air_quality, interval_s: 3600}
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"

    async def fill() -> None:
        async with open_store(store_url) as store:
            await store.write(seed())

    asyncio.run(fill())
    return {"CITYPILOT_STORE_URL": store_url,
            "CITYPILOT_CATALOG_URL": f"sqlite:///{tmp_path / 'catalog.db'}"}


def run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


def test_registry_load_and_show(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text(REGISTRY)
    code, out, err = run(env, "registry", "load", str(tmp_path / "registry.yaml"))
    assert code == 0 and out == "" and "loaded 1 pilot(s): p1" in err
    code, out, _ = run(env, "registry", "show", "--json")
    [pilot] = json.loads(out)["pilots"]
    assert pilot["timezone"] == "Europe/Berlin" and pilot["gateways"] == [{"id": "g1"}]
    # What `show` prints loads again.
    (tmp_path / "again.yaml").write_text(run(env, "registry", "show")[1])
    assert run(env, "registry", "load", str(tmp_path / "again.yaml"))[0] == 0
    (tmp_path / "bad.toml").write_text('[[pilots]]\nid = "p 1"\n')
    code, _, err = run(env, "registry", "load", str(tmp_path / "bad.toml"))
    assert code == 2 and "pilots.0.id" in err


def test_apikey_create_list_revoke(env: dict[str, str]) -> None:
    code, out, err = run(env, "apikey", "create", "--role", "viewer", "--name", "city of X",
                         "--pilot", "p1", "--expires", "30d")
    key = out.strip()
    assert code == 0 and key.startswith("cpk_") and "\n" not in key
    assert "shown only now" in err and key not in err
    catalog = Catalog(env["CITYPILOT_CATALOG_URL"])
    record = catalog.verify(key)
    assert record is not None and record.pilots == {"p1"} and record.expires_ns
    code, out, _ = run(env, "apikey", "create", "--role", "admin", "--name", "ops", "--json")
    assert json.loads(out)["key"].startswith("cpk_")
    listed = [json.loads(line) for line in run(env, "apikey", "list", "--json")[1].splitlines()]
    assert [(k["name"], k["role"], k["state"]) for k in listed] == [
        ("city of X", "viewer", "active"), ("ops", "admin", "active")]
    assert all("key" not in k for k in listed)
    assert run(env, "apikey", "revoke", record.id)[0] == 0
    assert catalog.verify(key) is not None and run(env, "apikey", "revoke", record.id)[0] == 1
    assert run(env, "apikey", "create", "--role", "boss", "--name", "x")[0] == 2
    assert run(env, "apikey", "create", "--role", "viewer", "--name", "x",
               "--pilot", "a/b")[0] == 2
    catalog.close()


def test_kpi_list_show_and_export(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text(REGISTRY)
    run(env, "registry", "load", str(tmp_path / "registry.yaml"))
    code, out, _ = run(env, "kpi", "list", "--json")
    assert code == 0 and [json.loads(line)["id"] for line in out.splitlines()] == [
        k.id for k in KPIS]
    code, out, _ = run(env, "kpi", "show", "usage_events", "--pilot", "p1", "--start",
                       "2024-01-15", "--end", "2024-01-17")
    assert code == 0 and "2024-01-15T00:00:00+01:00  service=parking" in out
    code, out, err = run(env, "kpi", "export", "--pilot", "p1", "--start", "2024-01-15",
                         "--end", "2024-01-17")
    assert code == 0 and f"[{len(KPIS)}/{len(KPIS)}]" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    saving = [r for r in rows if r["kpi"] == "lighting_energy_saving"]
    assert [r["value"] for r in saving] == ["50.0", ""]
    target = tmp_path / "kpis.xlsx"
    code, _, err = run(env, "kpi", "export", "--pilot", "p1", "--start", "2024-01-15",
                       "--end", "2024-01-17", "--format", "xlsx", "-o", str(target),
                       "--kpi", "pm25_mean")
    assert code == 0 and "wrote" in err
    sheet = openpyxl.load_workbook(target)["kpis"]
    assert sheet.max_row == 1 + 3  # aq1 on both days, x1 on the second
    for args, message in (
            (("--start", "2024-01-17", "--end", "2024-01-15"), "must be after"),
            (("--start", "2024-01-15T00:00", "--end", "2024-01-16"), "UTC offset"),
            (("--start", "2024-01-15", "--end", "2024-01-16", "--grain", "year"), "--grain")):
        code, _, err = run(env, "kpi", "show", "pm25_mean", "--pilot", "p1", *args)
        assert code == 2 and message in err
    assert run(env, "kpi", "show", "nope", "--pilot", "p1", "--start", "2024-01-15",
               "--end", "2024-01-16")[0] == 2
