"""OGC API – Features on the inventory: the landing page, conformance, collections, items
with limit/offset paging, bbox and datetime, features by id; and OWSLib, an independent
client, listing the collections and paging through every device over HTTP."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from owslib.ogcapi.features import Features

from api.app import ApiOptions, create_app
from api.catalog import Catalog, Device, OpenData, Pilot, Registry
from ingest.stores import open_store
from tests.api.conftest import Live, serving
from tests.api.test_open import opened  # noqa: F401 (a fixture)
from tests.contract.test_kpis import reading
from tests.servers import free_port

BASE = "http://127.0.0.1:8080/ogc"  # the default public URL


async def test_landing_conformance_and_collections(opened: Live) -> None:  # noqa: F811
    landing = (await opened.get("/ogc")).json()
    rels = {link["rel"]: link["href"] for link in landing["links"]}
    assert rels["conformance"] == f"{BASE}/conformance" and rels["data"] == f"{BASE}/collections"
    assert rels["service-desc"] == "http://127.0.0.1:8080/openapi.json"
    conformance = (await opened.get("/ogc/conformance")).json()["conformsTo"]
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in conformance
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson" in conformance
    collections = (await opened.get("/ogc/collections")).json()["collections"]
    assert [c["id"] for c in collections] == ["devices", "gateways"]
    for c in collections:
        assert c["itemType"] == "feature"
        assert c["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        assert c["extent"]["spatial"]["bbox"] == [[13.40, 52.52, 13.40, 52.52]]
    missing = await opened.get("/ogc/collections/lamps")
    assert missing.status_code == 404 and "devices and gateways" in missing.json()["detail"]


async def test_items_page_with_next_links(opened: Live) -> None:  # noqa: F811
    seen: list[str] = []
    url: str | None = f"{BASE}/collections/devices/items?limit=3"
    while url is not None:
        page = await opened.client.get(url.removeprefix("http://127.0.0.1:8080"))
        assert page.headers["content-type"] == "application/geo+json"
        body = page.json()
        assert body["type"] == "FeatureCollection" and body["numberMatched"] == 4
        assert body["numberReturned"] == len(body["features"]) <= 3
        seen += [f["id"] for f in body["features"]]
        url = next((link["href"] for link in body["links"] if link["rel"] == "next"), None)
    assert seen == ["p1.g1.aq1", "p1.g1.ghost", "p1.g1.nz1", "p1.g2.x1"]
    last = (await opened.get("/ogc/collections/devices/items", limit=3, offset=3)).json()
    assert {link["rel"] for link in last["links"]} == {"self", "prev"}
    for bad in ({"limit": 0}, {"limit": 1001}, {"offset": -1}):
        assert (await opened.get("/ogc/collections/devices/items", **bad)).status_code == 422


async def test_a_device_feature_says_what_is_known(opened: Live) -> None:  # noqa: F811
    feature = (await opened.get("/ogc/collections/devices/items/p1.g1.aq1")).json()
    assert feature["geometry"] == {"type": "Point", "coordinates": [13.40, 52.52]}
    props = feature["properties"]
    assert props["uri"] == f"{BASE}/collections/devices/items/p1.g1.aq1"
    assert props["kind"] == "air_quality" and props["operator"] == "City"
    assert props["gateway_uri"] == f"{BASE}/collections/gateways/items/p1.g1"
    assert {"name": "no2", "unit": "µg/m³", "description": "nitrogen dioxide"} in props[
        "metrics"]
    assert all(m["name"] != "ingest_delay_s" for m in props["metrics"])
    # One fresh reading in the 720 hourly slots of the last 30 days (the KPIs' own code).
    assert props["availability_30d"] == pytest.approx(100 / 720)
    assert props["completeness_30d"] == pytest.approx(100 / 720)
    assert props["last_seen"].endswith("Z")
    # Seen only in data: no coordinates, no registry facts, its kind from the data.
    x1 = (await opened.get("/ogc/collections/devices/items/p1.g2.x1")).json()
    assert x1["geometry"] is None and x1["properties"]["registered"] is False
    assert x1["properties"]["kind"] == "air_quality" and x1["properties"]["operator"] is None
    # Unregistered and silent for 30 days, it is no sensor of the period for the KPI: null.
    assert x1["properties"]["availability_30d"] is None
    for bad in ("p1.g1", "p1.g1.nobody", "p1..aq1", "x" * 80):
        answer = await opened.get(f"/ogc/collections/devices/items/{bad}")
        assert answer.status_code == 404, bad
        assert answer.headers["content-type"] == "application/problem+json"
    gateway = (await opened.get("/ogc/collections/gateways/items/p1.g1")).json()
    assert gateway["properties"]["devices"] == 3  # aq1, ghost, nz1: the public ones
    assert gateway["geometry"] == {"type": "Point", "coordinates": [13.40, 52.52]}


async def test_bbox_and_datetime_select(opened: Live) -> None:  # noqa: F811
    async def ids(**params: object) -> list[str]:
        answer = await opened.get("/ogc/collections/devices/items", limit=100, **params)
        assert answer.status_code == 200, answer.text
        return [f["id"] for f in answer.json()["features"]]

    assert await ids(bbox="13,52,14,53") == ["p1.g1.aq1"]
    assert await ids(bbox="-10,35,5,45") == []
    assert await ids(bbox="170,50,14,53") == ["p1.g1.aq1"]  # across the antimeridian
    # Devices in service during a period: never-seen ghost always, nz1 and x1 (last seen in
    # January 2024) not in 2025, aq1 (seen now) in every period that reaches now.
    assert await ids(datetime="2025-01-01T00:00:00Z/..") == ["p1.g1.aq1", "p1.g1.ghost"]
    assert len(await ids(datetime="2024-01-01T00:00:00Z/2024-02-01T00:00:00Z")) == 4
    for bad in ({"bbox": "1,2,3"}, {"bbox": "a,b,c,d"}, {"bbox": "0,60,1,50"},
                {"datetime": "yesterday"}, {"datetime": "2024-01-01T00:00:00"},
                {"datetime": "2024-02-01T00:00:00Z/2024-01-01T00:00:00Z"}):
        answer = await opened.get("/ogc/collections/devices/items", **bad)
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"] == "application/problem+json"


def _grid(count: int) -> Pilot:
    return Pilot(id="grid", timezone="Europe/Rome", open=OpenData(
        open_data=True, open_kinds=("noise",)), devices=tuple(
            Device(id=f"n{i:02d}", gateway=f"gw{i % 3}", kind="noise", interval_s=600,
                   lat=45.0 + i / 100, lon=9.0 + i / 100) for i in range(count)))


async def _seed_grid(url: str, pilot: Pilot) -> None:
    async with open_store(url) as store:
        assert await store.write([
            reading("noise", d.id, time.time_ns() - 60 * 10**9, 1.0, gateway=d.gateway,
                    pilot=pilot.id, noise_laeq=55.0) for d in pilot.devices]) == []


def test_owslib_lists_the_collections_and_pages_through_every_device(
        sqlite_url: str, tmp_path: Path) -> None:
    pilot = _grid(23)
    asyncio.run(_seed_grid(sqlite_url, pilot))
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(catalog_url, key_cost=2**8)
    catalog.load(Registry(pilots=(pilot,)))
    catalog.close()
    port = free_port()
    app = create_app(ApiOptions(store_url=sqlite_url, catalog_url=catalog_url,
                                public_url=f"http://127.0.0.1:{port}"))
    with serving(app, port) as base:
        api = Features(f"{base}/ogc")
        assert [c["id"] for c in api.collections()["collections"]] == ["devices", "gateways"]
        assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in \
            api.conformance()["conformsTo"]
        seen: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = api.collection_items("devices", limit=5, offset=offset)
            assert page["numberMatched"] == 23
            seen += [f["id"] for f in page["features"]]
            nxt = [link["href"] for link in page["links"] if link["rel"] == "next"]
            assert all(href.startswith(base) for href in nxt)
            offset = int(parse_qs(urlsplit(nxt[0]).query)["offset"][0]) if nxt else None
        assert seen == [f"grid.{d.gateway}.{d.id}" for d in sorted(
            pilot.devices, key=lambda d: (d.gateway, d.id))]
        one = api.collection_item("devices", "grid.gw1.n01")
        assert one["properties"]["metrics"] == [
            {"name": "noise_laeq", "unit": "dB(A)",
             "description": "equivalent continuous sound level"}]
        gateways = api.collection_items("gateways", limit=10)
        assert [f["properties"]["devices"] for f in gateways["features"]] == [8, 8, 7]
