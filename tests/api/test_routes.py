"""What the routes answer over a real store: KPI values with their dimensions, exports in
three formats (XLSX with typed cells), bounded readings, devices with status, problem+json
for every error, readiness against a real broker."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from api.kpis.definitions import KPIS
from tests.api.conftest import MAX_POINTS, Live, start_live
from tests.servers import Mosquitto, free_port

PERIOD = {"start": "2024-01-15T00:00:00+01:00", "end": "2024-01-17T00:00:00+01:00"}


async def test_kpi_values_carry_local_periods_and_dimensions(live: Live) -> None:
    response = await live.get("/api/v1/kpis/usage_events", "viewer", pilot="p1", **PERIOD)
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["unit"], body["grain"], body["timezone"]) == (
        "usage_events", "uses", "day", "Europe/Berlin")
    assert [(v["start"], v["service"], v["value"]) for v in body["values"]] == [
        ("2024-01-15T00:00:00+01:00", "kiosk", 1.0), ("2024-01-15T00:00:00+01:00", "parking", 3.0),
        ("2024-01-16T00:00:00+01:00", "kiosk", 2.0), ("2024-01-16T00:00:00+01:00", "parking", 1.0)]
    week = (await live.get("/api/v1/kpis/peak_demand_ratio", "viewer", pilot="p1",
                           grain="week", **PERIOD)).json()
    kiosk = next(v for v in week["values"] if v["service"] == "kiosk")
    assert kiosk["value"] is None and kiosk["reason"] == "no capacity registered for service kiosk"
    # A pilot seen only in data answers like any other (UTC, nothing registered).
    unregistered = await live.client.delete("/api/v1/registry/pilots/p2",
                                            headers=live.auth("admin"))
    assert unregistered.status_code == 204
    p2 = (await live.get("/api/v1/kpis/pm25_mean", "viewer", pilot="p2", **PERIOD)).json()
    assert p2["timezone"] == "UTC"  # so the Berlin days start at 23:00 of a UTC day
    assert [v["value"] for v in p2["values"]] == [None, 999.0, None]
    pilots = {p["id"]: p["registered"] for p in (await live.get("/api/v1/pilots", "viewer")
                                                   ).json()}
    assert pilots == {"p1": True, "p2": False}


@pytest.mark.parametrize(("query", "fields"), [
    ({"start": "2024-01-17T00:00:00Z", "end": "2024-01-15T00:00:00Z"},
     ["query.start", "query.end"]),
    ({"start": "2024-01-15T00:00:00Z", "end": "2024-01-15T00:00:00Z"},
     ["query.start", "query.end"]),
    ({"start": "2024-01-15T00:00:00", "end": "2024-01-16T00:00:00Z"}, ["query.start"]),
    ({"start": "yesterday", "end": "2024-01-16T00:00:00Z"}, ["query.start"]),
    ({"start": "1999-01-15T00:00:00Z", "end": "2024-01-16T00:00:00Z"}, ["query.start"]),
    ({**PERIOD, "grain": "fortnight"}, ["query.grain"]),
    ({"start": "2020-01-01T00:00:00Z", "end": "2024-01-16T00:00:00Z"},
     ["query.start", "query.end"]),  # longer than the 400 days allowed
    ({**PERIOD, "pilot": "bad pilot!"}, ["query.pilot"]),
])
async def test_bad_parameters_are_422_naming_the_field(live: Live, query: dict[str, str],
                                                       fields: list[str]) -> None:
    response = await live.get("/api/v1/kpis/usage_events", "viewer", **{"pilot": "p1", **query})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == "Invalid parameters" and problem["instance"] == (
        "/api/v1/kpis/usage_events")
    assert [e["field"] for e in problem["errors"]] == fields


async def test_unknown_kpi_pilot_and_route_are_404(live: Live) -> None:
    for path, query in (("/api/v1/kpis/no_such_kpi", {"pilot": "p1", **PERIOD}),
                        ("/api/v1/kpis/pm25_mean", {"pilot": "nowhere", **PERIOD}),
                        ("/api/v1/nothing", {})):
        response = await live.get(path, "viewer", **query)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"


async def test_exports_in_three_formats(live: Live) -> None:
    query = {"pilot": "p1", **PERIOD}
    text = (await live.get("/api/v1/exports/kpis", "viewer", **query, format="csv")).text
    table = list(csv.DictReader(io.StringIO(text)))
    assert {r["kpi"] for r in table} == {k.id for k in KPIS}
    pm25 = next(r for r in table if r["kpi"] == "pm25_mean" and r["device"] == "aq1")
    assert (pm25["unit"], pm25["start"], pm25["value"]) == (
        "µg/m³", "2024-01-15T00:00:00+01:00", "10.0")
    response = await live.get("/api/v1/exports/kpis", "viewer", **query, format="xlsx")
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    sheet, defs = book["kpis"], book["definitions"]
    header = [c.value for c in sheet[1]]
    rows = [dict(zip(header, (c.value for c in row), strict=True))
            for row in sheet.iter_rows(min_row=2)]
    assert len(rows) == len(table)
    pm25_row = next(r for r in rows if r["kpi"] == "pm25_mean" and r["device"] == "aq1")
    assert isinstance(pm25_row["value"], int | float) and pm25_row["value"] == 10.0
    assert pm25_row["start"] == datetime(2024, 1, 15)  # a date cell, in local time
    assert pm25_row["timezone"] == "Europe/Berlin"
    nulls = [r for r in rows if r["value"] is None]
    assert nulls and all(r["reason"] for r in nulls)
    assert [c.value for c in defs[1]][:4] == ["id", "title", "family", "unit"]
    assert defs.max_row == len(KPIS) + 1
    # Allowances name the exceedance KPI and the regime; definitions carry the limit values.
    left = next(r for r in table if r["kpi"] == "exceedances_left" and r["device"] == "aq1"
                and r["indicator"] == "pm10_daily_exceedances_2030")
    assert (left["regime"], left["value"]) == ("Directive (EU) 2024/2881", "17.0")
    limits = {row[0].value: row[-1].value for row in defs.iter_rows(min_row=2)}
    assert limits["pm25_mean"] == ("Directive 2008/50/EC: 25 µg/m³ (calendar year); "
                                   "Directive (EU) 2024/2881: 10 µg/m³ (calendar year)")
    listed = {d["id"]: d for d in (await live.get("/api/v1/kpis", "viewer")).json()}
    assert listed["no2_hourly_exceedances"]["limits"] == [
        {"regime": "Directive 2008/50/EC", "value": 200.0, "unit": "µg/m³",
         "averaging": "hour", "allowed": 18},
        {"regime": "Directive (EU) 2024/2881", "value": 200.0, "unit": "µg/m³",
         "averaging": "hour", "allowed": 3}]
    assert listed["usage_events"]["limits"] == []
    body = (await live.get("/api/v1/exports/kpis", "viewer", **query, format="json",
                           kpi="usage_events")).json()
    assert body["timezone"] == "Europe/Berlin" and [k["id"] for k in body["kpis"]] == [
        "usage_events"]


async def test_readings_are_bounded(live: Live) -> None:
    query = {"pilot": "p1", "kind": "air_quality", "metric": "no2", **PERIOD}
    hourly = (await live.get("/api/v1/readings", "operator", **query, device="aq1",
                             every=3600)).json()
    [series] = hourly["series"]
    assert series["device"] == "aq1" and len(series["points"]) == 36  # 24 + 12 hours
    assert series["points"][5]["value"] == 250.0 and not hourly["downsampled"]
    refused = await live.get("/api/v1/readings", "operator", **query, every=1)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "query.every"
    assert "use every >=" in refused.json()["detail"]
    chosen = (await live.get("/api/v1/readings", "operator", **query)).json()
    assert chosen["downsampled"] and 2 * 86400 / chosen["every_s"] <= MAX_POINTS
    many = await live.client.get("/api/v1/readings", params=[*query.items(), *(
        ("device", f"d{i}") for i in range(21))], headers=live.auth("operator"))
    assert many.status_code == 422
    bad = await live.get("/api/v1/readings", "operator", **query, device="a/b")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.device"


async def test_devices_with_status_and_filters(live: Live) -> None:
    devices = (await live.get("/api/v1/devices", "operator", pilot="p1")).json()
    by_id = {(d["gateway"], d["id"]): d for d in devices}
    assert by_id[("g1", "aq1")]["online"] and by_id[("g1", "aq1")]["registered"]
    assert not by_id[("g1", "ghost")]["online"] and by_id[("g1", "ghost")]["last_seen"] is None
    x1 = by_id[("g2", "x1")]
    assert (x1["registered"], x1["kind"], x1["interval_s"]) == (False, "air_quality", 300.0)
    assert x1["last_seen"].startswith("2024-01-16T00:05:00")  # 01:05 Berlin, in UTC
    # Unregistered and sending only events: listed under the service its events name.
    kiosk = by_id[("g1", "kiosk1")]
    assert (kiosk["registered"], kiosk["kind"], kiosk["service"], kiosk["kinds_seen"]) == (
        False, None, "kiosk", ["event"])
    online = (await live.get("/api/v1/devices", "operator", pilot="p1", online="true")).json()
    assert [d["id"] for d in online] == ["aq1"]
    parking = (await live.get("/api/v1/devices", "operator", kind="parking")).json()
    assert [d["id"] for d in parking] == ["pk1", "pk2"]
    assert [d["id"] for d in (await live.get("/api/v1/devices", "operator", gateway="g2")
                              ).json()] == ["x1"]


async def test_registry_edits_and_their_validation(live: Live) -> None:
    admin = live.auth("admin")
    mismatch = await live.client.put("/api/v1/registry/pilots/p3", headers=admin,
                                     json={"id": "p4"})
    assert mismatch.status_code == 422 and mismatch.json()["errors"][0]["field"] == "body.id"
    bad = await live.client.put("/api/v1/registry/pilots/p3", headers=admin,
                                json={"id": "p3", "timezone": "Mars/Base"})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.timezone"
    bad = await live.client.put("/api/v1/registry/pilots/p3", headers=admin, json={
        "id": "p3", "devices": [{"id": "d1", "gateway": "gw", "installed": "2024-02-30"}]})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "body.devices.0.installed"
    bad = await live.client.put("/api/v1/registry/pilots/p3", headers=admin, json={
        "id": "p3", "open": {"open_data": True, "open_min_users": 3}})
    assert bad.status_code == 422 and "at least 5" in bad.json()["errors"][0]["message"]
    assert bad.json()["errors"][0]["field"] == "body.open.open_min_users"
    ok = await live.client.put("/api/v1/registry/pilots/p3", headers=admin, json={
        "id": "p3", "population": 1000,
        "devices": [{"id": "d1", "gateway": "gw", "installed": "2024-03-01"}]})
    assert ok.status_code == 200 and ok.json()["gateways"] == [
        {"id": "gw", "name": None, "location": None}]
    shown = await live.get("/api/v1/registry/pilots/p3", "admin")
    assert shown.json()["devices"][0]["installed"] == "2024-03-01"
    opened = await live.client.put("/api/v1/registry/pilots/p3", headers=admin, json={
        "id": "p3", "open": {"open_data": True, "open_kinds": ["noise"]},
        "devices": [{"id": "d1", "gateway": "gw", "operator": "City", "network": "LoRaWAN"}]})
    assert opened.status_code == 200
    assert opened.json()["open"] == {
        "open_data": True, "open_kinds": ["noise"], "open_min_users": 10,
        "licence": "CC-BY-4.0", "contact_name": None, "contact_email": None}
    assert opened.json()["devices"][0]["network"] == "LoRaWAN"
    assert "p3" in {p["id"] for p in (await live.get("/api/v1/pilots", "viewer")).json()}


async def test_metrics_count_requests(live: Live) -> None:
    await live.get("/api/v1/pilots", "viewer")
    text = (await live.get("/metrics", "operator")).text
    assert 'citypilot_api_requests_total{method="GET",route="/api/v1/pilots",status="200"}' in text


async def test_readyz_checks_store_and_broker(mosquitto: Mosquitto, sqlite_url: str,
                                              tmp_path: Path) -> None:
    async for live in start_live(sqlite_url, tmp_path / "up", mqtt_url=mosquitto.url):
        ready = await live.client.get("/readyz")
        # Rollups that were never built are reported, and never make the API unready.
        assert ready.status_code == 200 and ready.json()["checks"] == {
            "store": "ok", "broker": "ok",
            "rollups": "not built yet: KPIs read raw points (run `citypilot rollup`)"}
    async for live in start_live(sqlite_url, tmp_path / "down",
                                 mqtt_url=f"mqtt://127.0.0.1:{free_port()}"):
        down = await live.client.get("/readyz")
        assert down.status_code == 503 and "broker unreachable" in down.json()["detail"]
