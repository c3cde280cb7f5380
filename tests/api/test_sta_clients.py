"""SensorThings read by others: frost-sta-client (Fraunhofer's Python client) walks Things ->
Datastreams -> Observations over HTTP, following `@iot.nextLink`, and gets the readings API's
values; ids stay the same after a restart; service use is only suppressed daily counts; and
without a key nothing of a closed kind, a user or an event appears."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import frost_sta_client as fsc
import httpx
import pytest

from api.app import ApiOptions, create_app
from api.catalog import Catalog, OpenData, Registry, Role
from ingest.stores import open_store
from tests.api.conftest import P2, Live, serving, start_live
from tests.api.test_open import OPENED, opened  # noqa: F401 (a fixture)
from tests.contract.test_kpis import D, H, T, event, seed
from tests.servers import free_port

STA = "/sta/v1.1"
UNTIL = "2024-01-17T00:00:00Z"  # the seed's days, not the fresh reading of now


def _walk(base: str) -> dict[tuple[str, str], list[tuple[str, float | None]]]:
    """Every Thing's Datastreams' Observations, oldest first, as frost-sta-client sees them."""
    service = fsc.SensorThingsService(f"{base}{STA}")
    out: dict[tuple[str, str], list[tuple[str, float | None]]] = {}
    for thing in service.things().query().top(2).list():
        for ds in thing.get_datastreams().query().top(1).list():
            observations = ds.get_observations().query().top(5).orderby(
                "phenomenonTime", "asc").filter(f"phenomenonTime lt {UNTIL}").list()
            out[(thing.name, ds.name)] = [
                (str(o.phenomenon_time), o.result) for o in observations]
    return out


# frost-sta-client 1.1 calls furl's deprecated `pathstr` on every request (its bug, not ours).
@pytest.mark.filterwarnings("ignore:furl.pathstr is deprecated:DeprecationWarning")
def test_frost_client_walks_things_datastreams_observations(sqlite_url: str, tmp_path: Path
                                                            ) -> None:
    async def fill() -> None:
        async with open_store(sqlite_url) as store:
            assert await store.write(seed()) == []
    asyncio.run(fill())
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(catalog_url, key_cost=2**8)
    catalog.load(Registry(pilots=(OPENED, P2)))
    _, key = catalog.create_key("ops", Role.OPERATOR)
    catalog.close()
    port = free_port()
    app = create_app(ApiOptions(store_url=sqlite_url, catalog_url=catalog_url,
                                public_url=f"http://127.0.0.1:{port}"))
    with serving(app, port) as base:
        walked = _walk(base)
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as api:
            for (_, name), observations in walked.items():
                if name.endswith(")"):  # usage ("... per day (p1)"): no readings behind it
                    continue
                metric, _, device = name.partition(" of ")
                _, gateway, device_id = device.split(".")
                kind = {"aq1": "air_quality", "x1": "air_quality", "nz1": "noise"}[device_id]
                answer = api.get("/api/v1/readings", params={
                    "pilot": "p1", "kind": kind, "metric": metric, "device": device_id,
                    "gateway": gateway, "start": "2024-01-14T00:00:00Z", "end": UNTIL,
                    "every": 60})
                points = answer.json()["series"][0]["points"]
                assert [(_at(p["time"]), p["value"]) for p in points] == [
                    (_at(t), v) for t, v in observations], name
    # aq1's three metrics and nz1's noise, all of their points, and x1's; no closed kind.
    names = {name for _, name in walked}
    assert {"no2 of p1.g1.aq1", "pm25 of p1.g1.aq1", "noise_laeq of p1.g1.nz1",
            "pm10 of p1.g2.x1"} <= names
    assert len(walked[("p1.g1.aq1", "no2 of p1.g1.aq1")]) == 24 + 13  # day 0, day 1
    readings = {n for n in names if not n.endswith(")")}
    assert not any("parking" in n or "lighting" in n or "p2" in n for n in readings)
    assert {"parking uses per day (p1)", "kiosk users per day (p1)"} <= names - readings


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def _ids(live: Live) -> dict[str, int]:
    out = {}
    for name in ("Things", "Datastreams", "Sensors", "ObservedProperties", "Locations"):
        body = (await live.get(f"{STA}/{name}", **{"$top": 1000})).json()
        out |= {f"{name}/{e['name']}": e["@iot.id"] for e in body["value"]}
    return out


async def test_ids_stay_the_same_after_a_restart(sqlite_url: str, tmp_path: Path) -> None:
    async for live in start_live(sqlite_url, tmp_path, pilots=(OPENED, P2)):
        before = await _ids(live)
    async for live in start_live(sqlite_url, tmp_path, pilots=(OPENED, P2)):
        assert await _ids(live) == before
    assert len(before) > 10 and len(set(before.values())) == len(before)


def _crowd(users: int, day: int, service: str = "parking") -> list[Any]:
    return [event(T + day * D + 12 * H + i * 60 * 10**9, f"crowd{i}", service, "use", "term1")
            for i in range(users)]


async def test_service_use_is_only_suppressed_daily_counts(sqlite_url: str, tmp_path: Path
                                                          ) -> None:
    pilot = OPENED.model_copy(update={"open": OpenData(
        open_data=True, open_kinds=("air_quality",), open_min_users=5)})
    async with open_store(sqlite_url) as store:  # 6 users on day 2, 3 on day 3
        assert await store.write(_crowd(6, 2) + _crowd(3, 3)) == []
    async for live in start_live(sqlite_url, tmp_path, pilots=(pilot, P2)):
        things = (await live.get(f"{STA}/Things", **{
            "$filter": "name eq 'p1 parking'", "$expand": "Datastreams"})).json()["value"]
        [thing] = things
        streams = {d["name"]: d["@iot.id"] for d in thing["Datastreams"]}
        uses = streams["parking uses per day (p1)"]
        window = "phenomenonTime ge 2024-01-01T00:00:00Z and phenomenonTime lt 2024-02-01T00:00:00Z"
        body = (await live.get(f"{STA}/Datastreams({uses})/Observations", **{
            "$filter": window, "$orderby": "phenomenonTime asc"})).json()
        cells = [(o["phenomenonTime"].split("/")[0][:10], o["result"], o.get("resultQuality"))
                 for o in body["value"]]
        usage = (await live.get("/open/v1/usage", pilot="p1", start="2024-01-01T00:00:00+01:00",
                                end="2024-02-01T00:00:00+01:00")).json()
        expected = [(c["day"], None if c["uses"] == "c" else c["uses"],
                     "c" if c["uses"] == "c" else None)
                    for c in usage["cells"] if c["service"] == "parking"]
        assert cells == [(_utc_day(d), r, q) for d, r, q in expected]
        assert (None, "c") in [(r, q) for _, r, q in cells]  # small days are hidden
        assert any(isinstance(r, int) and r >= 6 for _, r, _ in cells)  # the crowd's day
        text = str(body) + str(things)
        assert not any(f"crowd{i}" in text for i in range(6)) and "u1" not in text


def _utc_day(local_day: str) -> str:
    """The UTC date a Berlin local midnight falls on (the day before, at 23:00)."""
    from datetime import date, timedelta
    return (date.fromisoformat(local_day) - timedelta(days=1)).isoformat()


async def test_nothing_closed_appears_without_a_key(opened: Live) -> None:  # noqa: F811
    texts = []
    for name in ("", "/Things", "/Locations", "/HistoricalLocations", "/Sensors",
                 "/ObservedProperties", "/Datastreams", "/Observations",
                 "/FeaturesOfInterest"):
        answer = await opened.get(STA + name, **({"$top": 10000} if name else {}))
        assert answer.status_code == 200, name
        texts.append(answer.text)
    every = "".join(texts)
    for word in ("u1", "u2", "u3", "u4", "session_start", "feedback", "event", "lighting",
                 "pk1", "lamp1", "occupancy", "energy", "aq9", '"p2', "ingest_delay_s",
                 "user\""):
        assert word not in every, word
    sensors = {s["name"] for s in (await opened.get(STA + "/Sensors")).json()["value"]}
    assert sensors == {"air_quality", "noise", "service use"}  # never parking or lighting
    closed = await opened.get(STA + "/Things", "viewer", **{"$top": 1000})
    assert "p1.g1.pk1" in closed.text and "p2.g1.aq9" in closed.text  # a key sees them
