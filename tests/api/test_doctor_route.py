"""`GET /api/v1/doctor`: the command's findings for an admin key of every pilot, problem+json
for everyone else, and the answer as the OpenAPI document describes it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from api.options import DoctorOptions
from tests.api.conftest import Live, start_live
from tests.servers import Mosquitto


@pytest.fixture
async def live(mosquitto: Mosquitto, sqlite_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    doctor = DoctorOptions(spool_dir=str(tmp_path / "spool"), spool_max_bytes=64 << 20,
                           probe_messages=500)
    async for running in start_live(sqlite_url, tmp_path, mqtt_url=mosquitto.url,
                                    doctor=doctor):
        yield running


async def test_an_admin_gets_the_findings(live: Live) -> None:
    answer = await live.get("/api/v1/doctor", "admin")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    by_id = {f["id"]: f for f in body["findings"]}
    # The session broker keeps every queued message (max_queued_messages 0).
    assert by_id["broker.queue"]["level"] == "ok", by_id["broker.queue"]
    assert "kept all 500 probe messages" in by_id["broker.queue"]["message"]
    assert by_id["spool.disk"]["level"] == "ok"
    assert by_id["store.version"]["message"] == "SQLite store: no series limits"
    assert body["level"] in ("ok", "warning")  # the seed's gateways may look late
    assert all(set(f) == {"id", "level", "message", "fix"} for f in body["findings"])


@pytest.mark.parametrize("who", ["operator", "admin_p2"])
async def test_others_get_a_problem(live: Live, who: str) -> None:
    answer = await live.get("/api/v1/doctor", who)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert "admin key" in answer.json()["detail"]


async def test_the_route_is_in_the_openapi_document(live: Live) -> None:
    document = (await live.client.get("/openapi.json")).json()
    operation = document["paths"]["/api/v1/doctor"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/Checkup"}
    finding = document["components"]["schemas"]["Finding"]
    assert set(finding["properties"]) == {"id", "level", "message", "fix"}
