"""A live API over a real store holding the hand-built pilot of the KPI contract tests, with
a key per role (and pilot-limited keys), driven in-process through httpx's ASGI transport
with the app's lifespan running."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from api.app import ApiOptions, create_app
from api.catalog import Catalog, Device, Pilot, Registry, Role
from api.kpis.service import KpiOptions
from ingest.stores import open_store
from tests.contract.test_kpis import PILOT, seed
from tests.contract.test_kpis import reading as make_reading

P2 = Pilot(id="p2", name="Second city", timezone="Europe/Lisbon",
           devices=(Device(id="aq9", gateway="g1", kind="air_quality", interval_s=3600),))
KEYS = {
    "viewer": (Role.VIEWER, None), "operator": (Role.OPERATOR, None),
    "admin": (Role.ADMIN, None), "viewer_p2": (Role.VIEWER, {"p2"}),
    "operator_p2": (Role.OPERATOR, {"p2"}), "admin_p2": (Role.ADMIN, {"p2"}),
}
URL_FIXTURES = {"sqlite": "sqlite_url", "influxdb": "influx_url"}
MAX_POINTS = 500


@dataclass
class Live:
    client: httpx.AsyncClient
    catalog: Catalog
    catalog_url: str
    keys: dict[str, str] = field(default_factory=dict)
    store_url: str = ""

    def auth(self, who: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"} if who else {}

    async def get(self, path: str, who: str | None = None, **params: object) -> httpx.Response:
        return await self.client.get(path, params=params or None, headers=self.auth(who))


async def start_live(store_url: str, tmp_path: Path, mqtt_url: str | None = None,
                     pilots: tuple[Pilot, ...] = (PILOT, P2), **options: Any
                     ) -> AsyncIterator[Live]:
    """`options`: more `ApiOptions` (`open_rate_limit`, `public_url`). The role tests send
    a wrong key to every route: the failed-authentication limit is raised out of their way
    unless a test sets it (`test_guard.py`)."""
    options.setdefault("auth_failure_limit", "10000/minute")
    catalog_url = f"sqlite:///{tmp_path / 'catalog.db'}"
    catalog = Catalog(catalog_url, key_cost=2**8)  # cheap hashes: only tests
    catalog.load(Registry(pilots=pilots))
    async with open_store(store_url) as store:
        # The seed, plus a fresh aq1 reading so that one device is online now.
        assert await store.write([*seed(), make_reading(
            "air_quality", "aq1", time.time_ns(), 1.0, no2=10.0)]) == []
    keys = {name: catalog.create_key(name, role, pilots=frozenset(p) if p else None)[1]
            for name, (role, p) in KEYS.items()}
    app = create_app(ApiOptions(store_url=store_url, catalog_url=catalog_url,
                                mqtt_url=mqtt_url, max_points=MAX_POINTS,
                                kpi=KpiOptions(max_days=400), **options))
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://citypilot.test") as client:
        yield Live(client, catalog, catalog_url, keys, store_url)
    catalog.close()


@pytest.fixture(params=sorted(URL_FIXTURES))
async def live(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Live]:
    """The live API, once per store."""
    url = request.getfixturevalue(URL_FIXTURES[request.param])
    async for running in start_live(url, tmp_path):
        yield running


@pytest.fixture
async def live_influx(influx_url: str, tmp_path: Path) -> AsyncIterator[Live]:
    async for running in start_live(influx_url, tmp_path):
        yield running


@contextmanager
def serving(app: FastAPI, port: int) -> Iterator[str]:
    """The app in a real uvicorn (lifespan on) on a thread of its own: its base URL, for
    clients that speak HTTP themselves (schemathesis, OWSLib)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(15)
