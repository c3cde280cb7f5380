"""Who may read the open interfaces: nothing without a key unless the registry opens a pilot;
then only its public kinds, never a user id, an event or a dead letter; with a viewer key,
every pilot the key may read. Rate-limited per client address."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.catalog import Device, OpenData, Pilot, Registry
from tests.api.conftest import P2, URL_FIXTURES, Live, start_live
from tests.contract.test_kpis import PILOT

OPEN_ROUTES = ["/ogc", "/ogc/conformance", "/ogc/collections", "/ogc/collections/devices",
               "/ogc/collections/gateways", "/ogc/collections/devices/items",
               "/ogc/collections/gateways/items", "/ogc/collections/devices/items/p1.g1.aq1",
               "/ogc/collections/gateways/items/p1.g1",
               "/open/v1/usage?pilot=p1&start=2024-01-08T00:00:00Z&end=2024-01-22T00:00:00Z",
               "/sta/v1.1", "/sta/v1.1/Observations?$top=1000", "/sta/v1.1/Locations"]
# The seed's user ids, event types, closed kinds and their devices, the other pilot, the
# dead letters: none may appear in an anonymous answer about the open p1.
NEVER = ["u1", "u2", "u3", "u4", "u5", "u6", "session_start", "feedback", "kiosk", "event",
         "dead_letter", "bad_json", "parking", "lighting", "pk1", "pk2", "lamp1", "term1",
         "occupancy", "energy", "aq9", '"p2', "ingest_delay_s", "user"]
OPENED = PILOT.model_copy(update={
    "open": OpenData(open_data=True, open_kinds=("air_quality", "noise")),
    "devices": tuple(d.model_copy(update={"lat": 52.52, "lon": 13.40, "operator": "City"})
                     if d.id == "aq1" else d for d in PILOT.devices)})


@pytest.fixture(params=sorted(URL_FIXTURES))
async def opened(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Live]:
    """The live API with p1 open (air quality and noise public), p2 closed."""
    url = request.getfixturevalue(URL_FIXTURES[request.param])
    async for running in start_live(url, tmp_path, pilots=(OPENED, P2)):
        yield running


async def test_without_open_data_every_open_route_needs_a_key(live: Live) -> None:
    for path in OPEN_ROUTES:
        answer = await live.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "viewer key" in answer.json()["detail"]
        bad = await live.client.get(path, headers={"Authorization": "Bearer cp_nope"})
        assert bad.status_code == 401, path
        assert (await live.get(path, "viewer")).status_code == 200, path


async def test_an_open_pilot_shows_only_its_public_kinds(opened: Live) -> None:
    answers = {path: await opened.get(path) for path in OPEN_ROUTES}
    answers["all devices"] = await opened.get("/ogc/collections/devices/items", limit=1000)
    for path, answer in answers.items():
        assert answer.status_code == 200, (path, answer.text)
        text = answer.text
        # Usage names services (parking, kiosk) by design; only as suppressed counts.
        for word in NEVER if "usage" not in path else NEVER[:8]:
            assert word not in text, (path, word)
    devices = answers["all devices"].json()
    assert sorted(f["id"] for f in devices["features"]) == [
        "p1.g1.aq1", "p1.g1.ghost", "p1.g1.nz1", "p1.g2.x1"]
    for kind in ("parking", "lighting"):  # a closed kind is not even a filter
        kinds = {f["properties"]["kind"] for f in devices["features"]}
        assert kind not in kinds
    # The closed pilot and closed kinds' devices are 401/404 without a key.
    closed = await opened.get("/ogc/collections/devices/items", pilot="p2")
    assert closed.status_code == 401 and "p2" in closed.json()["detail"]
    assert (await opened.get("/ogc/collections/devices/items/p2.g1.aq9")).status_code == 401
    assert (await opened.get("/ogc/collections/devices/items/p1.g1.pk1")).status_code == 404


async def test_a_viewer_key_reads_every_pilot_it_may(opened: Live) -> None:
    every = (await opened.get("/ogc/collections/devices/items", "viewer", limit=1000)).json()
    ids = {f["id"] for f in every["features"]}
    assert {"p1.g1.pk1", "p1.g1.term1", "p1.g1.lamp1", "p2.g1.aq9"} <= ids
    mine = (await opened.get("/ogc/collections/devices/items", "viewer_p2", limit=1000)).json()
    # term1 is seen in p2 only through events: listed with what is known, no kind.
    assert {f["id"]: f["properties"]["kind"] for f in mine["features"]} == {
        "p2.g1.aq9": "air_quality", "p2.g1.term1": None}
    other = await opened.get("/ogc/collections/devices/items", "viewer_p2", pilot="p1")
    assert other.status_code == 404
    for path in OPEN_ROUTES:  # nothing of the events either, with a key
        text = (await opened.get(path, "viewer")).text
        assert not any(w in text for w in ("u1", "u4", "session_start", "event")), path


async def test_open_routes_are_rate_limited_per_client(sqlite_url: str, tmp_path: Path
                                                       ) -> None:
    async for live in start_live(sqlite_url, tmp_path, pilots=(OPENED,),
                                 open_rate_limit="3/minute"):
        for _ in range(3):
            assert (await live.get("/ogc/conformance")).status_code == 200
        refused = await live.get("/ogc/conformance")
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "3 per 1 minute" in refused.json()["detail"]
        # The key routes are not limited with them.
        assert (await live.get("/api/v1/pilots", "viewer")).status_code == 200


def test_no_open_pilot_without_open_data() -> None:
    registry = Registry(pilots=(Pilot(id="a", devices=(Device(id="d", gateway="g"),)),))
    assert json.loads(registry.model_dump_json())["pilots"][0]["open"] is None
