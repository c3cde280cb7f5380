"""Every route for each role, allowed and refused; pilot-limited keys against another pilot;
keys created and revoked while the API runs; the open routes stay open."""

from __future__ import annotations

import pytest

from api.catalog import Role
from tests.api.conftest import Live

PERIOD = {"start": "2024-01-15T00:00:00+01:00", "end": "2024-01-17T00:00:00+01:00"}
NEW_PILOT = {"id": "p3", "timezone": "UTC"}
NEW_KEY = {"name": "made in a test", "role": "viewer"}

# (method, path, query, body, least role, status when allowed)
ROUTES: list[tuple[str, str, dict[str, str], object, str, int]] = [
    ("GET", "/api/v1/me", {}, None, "viewer", 200),
    ("GET", "/api/v1/pilots", {}, None, "viewer", 200),
    ("GET", "/api/v1/kpis", {}, None, "viewer", 200),
    ("GET", "/api/v1/kpis/usage_events", {"pilot": "p1", **PERIOD}, None, "viewer", 200),
    ("GET", "/api/v1/exports/kpis", {"pilot": "p1", **PERIOD, "kpi": "pm25_mean"}, None,
     "viewer", 200),
    ("GET", "/api/v1/devices", {}, None, "operator", 200),
    ("GET", "/api/v1/readings", {"pilot": "p1", "kind": "air_quality", "metric": "no2",
                                 **PERIOD}, None, "operator", 200),
    ("GET", "/api/v1/deadletters", {}, None, "operator", 200),
    ("GET", "/api/v1/registry", {}, None, "admin", 200),
    ("GET", "/api/v1/registry/pilots/p1", {}, None, "admin", 200),
    ("PUT", "/api/v1/registry/pilots/p3", {}, NEW_PILOT, "admin", 200),
    ("PUT", "/api/v1/registry", {}, {"pilots": [NEW_PILOT]}, "admin", 200),
    ("DELETE", "/api/v1/registry/pilots/p9", {}, None, "admin", 404),
    ("GET", "/api/v1/keys", {}, None, "admin", 200),
    ("POST", "/api/v1/keys", {}, NEW_KEY, "admin", 201),
    ("DELETE", "/api/v1/keys/000000000000", {}, None, "admin", 404),
    ("GET", "/api/v1/doctor", {}, None, "admin", 200),
    ("GET", "/metrics", {}, None, "operator", 200),
]
RANKS = ["viewer", "operator", "admin"]


async def call(live: Live, method: str, path: str, query: dict[str, str], body: object,
               who: str | None, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else live.auth(who)
    response = await live.client.request(method, path, params=query, headers=headers,
                                         json=body)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
        problem = response.json()
        assert problem["status"] == response.status_code and problem["detail"]
    return response.status_code


async def test_every_route_for_every_role(live: Live) -> None:
    for method, path, query, body, least, ok in ROUTES:
        for who in RANKS:
            allowed = RANKS.index(who) >= RANKS.index(least)
            status = await call(live, method, path, query, body, who)
            assert status == (ok if allowed else 403), (method, path, who, status)
        assert await call(live, method, path, query, body, None) == 401, (method, path)
        assert await call(live, method, path, query, body, None, token="cpk_0123456789ab_x"
                          ) == 401


async def test_401_asks_for_a_bearer_key(live: Live) -> None:
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "},
                    {"Authorization": "Bearer not-a-key"}):
        response = await live.client.get("/api/v1/pilots", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("path", ["/", "/healthz", "/readyz", "/openapi.json", "/docs"])
async def test_open_routes_need_no_key(live: Live, path: str) -> None:
    response = await live.client.get(path)
    assert response.status_code == 200, response.text


async def test_pilot_limited_keys_see_only_their_pilots(live: Live) -> None:
    pilots = (await live.get("/api/v1/pilots", "viewer_p2")).json()
    assert [p["id"] for p in pilots] == ["p2"]
    assert [p["id"] for p in (await live.get("/api/v1/pilots", "viewer")).json()] == [
        "p1", "p2"]
    for who in ("viewer_p2", "operator_p2", "admin_p2"):
        assert (await live.get("/api/v1/kpis/pm25_mean", who, pilot="p1", **PERIOD)
                ).status_code == 403
        assert (await live.get("/api/v1/kpis/pm25_mean", who, pilot="p2", **PERIOD)
                ).status_code == 200
        assert (await live.get("/api/v1/exports/kpis", who, pilot="p1", **PERIOD)
                ).status_code == 403
    devices = (await live.get("/api/v1/devices", "operator_p2")).json()
    assert {d["pilot"] for d in devices} == {"p2"}
    assert (await live.get("/api/v1/devices", "operator_p2", pilot="p1")).status_code == 403
    assert (await live.get("/api/v1/readings", "operator_p2", pilot="p1", kind="air_quality",
                           metric="no2", **PERIOD)).status_code == 403
    letters = (await live.get("/api/v1/deadletters", "operator_p2")).json()
    assert [d["topic"] for d in letters] == ["citypilot/v1/p2/g1/aq9/telemetry"]
    assert len((await live.get("/api/v1/deadletters", "operator")).json()) == 4
    registry = (await live.get("/api/v1/registry", "admin_p2")).json()
    assert [p["id"] for p in registry["pilots"]] == ["p2"]
    assert (await live.get("/api/v1/registry/pilots/p1", "admin_p2")).status_code == 403
    assert (await live.get("/api/v1/keys", "admin_p2")).status_code == 403


async def test_keys_created_and_revoked_while_running(live: Live) -> None:
    # A key made by the CLI (another catalogue handle on the same file) works at once.
    from api.catalog import Catalog

    record, key = Catalog(live.catalog_url).create_key("cli", Role.OPERATOR,
                                                        pilots=frozenset({"p1"}))
    headers = {"Authorization": f"Bearer {key}"}
    me = (await live.client.get("/api/v1/me", headers=headers)).json()
    assert me == {"key_id": record.id, "name": "cli", "role": "operator", "pilots": ["p1"],
                  "expires": None}
    # One made over the API, too; then revoked over the API: refused from the next request.
    created = await live.client.post("/api/v1/keys", headers=live.auth("admin"), json={
        "name": "city of X", "role": "viewer", "pilots": ["p2"],
        "expires": "2199-01-01T00:00:00Z"})
    assert created.status_code == 201
    body = created.json()
    assert body["state"] == "active" and body["pilots"] == ["p2"]
    new = {"Authorization": f"Bearer {body['key']}"}
    assert (await live.client.get("/api/v1/pilots", headers=new)).status_code == 200
    listed = (await live.get("/api/v1/keys", "admin")).json()
    assert body["id"] in {k["id"] for k in listed} and all("key" not in k for k in listed)
    revoked = await live.client.delete(f"/api/v1/keys/{body['id']}",
                                       headers=live.auth("admin"))
    assert revoked.status_code == 204
    refused = await live.client.get("/api/v1/pilots", headers=new)
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    # An admin key does not revoke itself (it would lock its admin out).
    me = (await live.get("/api/v1/me", "admin")).json()["key_id"]
    itself = await live.client.delete(f"/api/v1/keys/{me}", headers=live.auth("admin"))
    assert itself.status_code == 409 and "itself" in itself.json()["detail"]
    assert (await live.get("/api/v1/keys", "admin")).status_code == 200
    expired = await live.client.post("/api/v1/keys", headers=live.auth("admin"), json={
        "name": "old", "role": "viewer", "expires": "2001-01-01T00:00:00+00:00"})
    old = {"Authorization": f"Bearer {expired.json()['key']}"}
    too_late = await live.client.post("/api/v1/keys", headers=live.auth("admin"), json={
        "name": "late", "role": "viewer", "expires": "2999-01-01T00:00:00Z"})
    assert too_late.status_code == 422
    assert [e["field"] for e in too_late.json()["errors"]] == ["body.expires"]
    assert "expired" in (await live.client.get("/api/v1/me", headers=old)).json()["detail"]
