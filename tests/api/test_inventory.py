"""The tender annex: `GET /api/v1/exports/inventory` as CSV, XLSX and GeoJSON, and
`citypilot inventory export`, whose CSV `frictionless validate` (an independent validator)
accepts against `inventory.schema.json` (`citypilot inventory schema`)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest

from api.open.annex import NAMES, table_schema
from tests.api.conftest import Live
from tests.api.test_cli import env, run  # noqa: F401 (a fixture)

FRICTIONLESS = Path(sys.executable).parent / "frictionless"
EVERY_P1 = {"aq1", "ghost", "pk1", "pk2", "term1", "term2", "lamp1", "nz1", "x1", "kiosk1"}


def _rows(text: str) -> dict[str, dict[str, str]]:
    return {r["device"]: r for r in csv.DictReader(io.StringIO(text))}


async def test_inventory_export_as_csv_xlsx_and_geojson(live: Live) -> None:
    answer = await live.get("/api/v1/exports/inventory", "viewer", pilot="p1")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.text.splitlines()[0].split(",") == list(NAMES)
    rows = _rows(answer.text)
    assert set(rows) == EVERY_P1  # every kind with a key, and devices seen only in data
    aq1 = rows["aq1"]
    assert aq1["uri"] == "http://127.0.0.1:8080/ogc/collections/devices/items/p1.g1.aq1"
    assert float(aq1["availability_30d"]) == pytest.approx(100 / 720)
    assert aq1["registered"] == "true" and rows["x1"]["registered"] == "false"
    assert rows["term1"]["service"] == "parking" and rows["term1"]["kind"] == ""
    assert rows["pk1"]["metrics"] == "occupancy [1]"
    book = openpyxl.load_workbook(io.BytesIO((await live.get(
        "/api/v1/exports/inventory", "viewer", pilot="p1", format="xlsx")).content))
    assert book.sheetnames == ["inventory", "summary"]
    sheet = book["inventory"]
    assert [c.value for c in sheet[1]] == list(NAMES) and sheet.max_row == len(EVERY_P1) + 1
    summary = {r[1]: r for r in book["summary"].iter_rows(min_row=2, values_only=True)
               if r and r[0] == "p1"}
    assert summary["air_quality"][2:5] == (3, 0, 1)  # aq1, ghost, x1; none located; aq1 seen
    assert any(r and r[1] == "http://127.0.0.1:8080/ogc" for r in
               book["summary"].iter_rows(values_only=True))
    geo = (await live.get("/api/v1/exports/inventory", "viewer", pilot="p1",
                          format="geojson")).json()
    assert {f["properties"]["device"] for f in geo["features"]} == EVERY_P1
    assert geo["interfaces"][0]["url"] == "http://127.0.0.1:8080/ogc"
    assert (await live.get("/api/v1/exports/inventory", pilot="p1")).status_code == 401
    assert (await live.get("/api/v1/exports/inventory", "viewer_p2", pilot="p1")
            ).status_code == 403
    bad = await live.get("/api/v1/exports/inventory", "viewer", pilot="p1", format="pdf")
    assert bad.status_code == 422
    schema = (await live.get("/api/v1/exports/inventory.schema.json", "viewer")).json()
    assert schema == table_schema()


def test_schema_describes_every_column_with_its_type_and_unit() -> None:
    fields = {f["name"]: f for f in table_schema()["fields"]}
    assert tuple(fields) == NAMES
    assert fields["availability_30d"]["unit"] == "%" and fields["interval_s"]["unit"] == "s"
    assert all(f["type"] and f["description"] for f in fields.values())


def test_cli_export_passes_frictionless_validate(env: dict[str, str],  # noqa: F811
                                                 tmp_path: Path) -> None:
    (tmp_path / "registry.yaml").write_text(
        "pilots:\n  - id: p1\n    timezone: Europe/Berlin\n    devices:\n"
        "      - {id: aq1, gateway: g1, kind: air_quality, interval_s: 3600, lat: 52.5,\n"
        "         lon: 13.4, installed: 2024-01-02, operator: City, network: LoRaWAN}\n")
    assert run(env, "registry", "load", str(tmp_path / "registry.yaml"))[0] == 0
    code, _, err = run(env, "inventory", "export", "--pilot", "p1", "-o",
                       str(tmp_path / "inventory.csv"))
    assert code == 0, err
    code, out, _ = run(env, "inventory", "schema")
    assert code == 0
    (tmp_path / "inventory.schema.json").write_text(out)
    text = (tmp_path / "inventory.csv").read_text()
    assert _rows(text)["aq1"]["installed"] == "2024-01-02"

    def validate(name: str) -> dict[str, object]:
        done = subprocess.run(
            [str(FRICTIONLESS), "validate", "--json", "--schema", "inventory.schema.json",
             name], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
        report: dict[str, object] = json.loads(done.stdout)
        return report

    report = validate("inventory.csv")
    assert report["valid"] is True, json.dumps(report)[:2000]
    # The validator can fail: an availability of 150 % breaks the column's maximum.
    rows = list(csv.DictReader(io.StringIO(text)))
    rows[0]["availability_30d"] = "150"
    with (tmp_path / "broken.csv").open("w", newline="") as broken:
        writer = csv.DictWriter(broken, fieldnames=NAMES)
        writer.writeheader()
        writer.writerows(rows)
    assert validate("broken.csv")["valid"] is False
    code, _, err = run(env, "inventory", "export", "--pilot", "nowhere")
    assert code == 2 and "no pilot 'nowhere'" in err
    code, _, err = run(env, "inventory", "export", "--pilot", "p1", "--format", "pdf")
    assert code == 2 and "--format" in err
