"""A live `citypilot api` over a SQLite store holding three weeks of simulated pilot data,
with an operator key and a pilot-limited viewer key, and Debian's chromium driven by
Playwright (never a downloaded browser). Both are started once for the console tests. All
but one of PILOT's registered devices have coordinates (around Valencia); OTHER's have none.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, Route, sync_playwright

from api.catalog import Catalog, Role
from simulators.deployment import FleetSpec
from simulators.scenario import Scenario
from tests.console.seed import FAULTS, placed, registry, seed
from tests.servers import free_port
from tests.support import wait_until

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PILOT, OTHER = "pilot-01", "harbour-01"
VALENCIA = (39.4699, -0.3763)  # PILOT's devices are placed around it; OTHER's have no place
ZONES = {PILOT: "Europe/Madrid", OTHER: "Europe/Lisbon"}
DAY_MS = 86_400_000


@dataclass
class Server:
    url: str
    keys: dict[str, str]
    devices: set[str]  # the simulated devices of PILOT
    services: set[str]  # the services those devices count uses of
    log: Path

    def get(self, path: str, who: str, **params: object) -> httpx.Response:
        response = httpx.get(self.url + path, params=params,  # type: ignore[arg-type]
                             headers={"Authorization": f"Bearer {self.keys[who]}"}, timeout=30)
        assert response.status_code == 200, response.text
        return response


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("console")
    store_url, catalog_url = f"sqlite:///{home / 'store.db'}", f"sqlite:///{home / 'catalog.db'}"
    main = Scenario(FleetSpec(pilots=1, gateways=1, devices=11, seed=11), FAULTS)
    small = Scenario(FleetSpec(pilots=1, gateways=1, devices=3, seed=5, pilot_prefix="harbour"),
                     FAULTS)
    now_ms = time.time_ns() // 1_000_000
    # Three weeks reach back to the Monday before last: last week and the week before are whole.
    # On a thread of its own: Playwright's sync API keeps an event loop running on this one.
    with ThreadPoolExecutor(1) as worker:
        worker.submit(asyncio.run, seed(store_url, [(main, now_ms - 21 * DAY_MS, now_ms),
                                                    (small, now_ms - DAY_MS, now_ms)])).result()
    catalog = Catalog(catalog_url, key_cost=2**8)  # cheap hashes: only tests
    catalog.load(placed(registry({PILOT: (main, ZONES[PILOT]), OTHER: (small, ZONES[OTHER])}),
                        PILOT, VALENCIA))
    keys = {"operator": catalog.create_key("console operator", Role.OPERATOR)[1],
            "viewer": catalog.create_key("city staff", Role.VIEWER,
                                         pilots=frozenset({PILOT}))[1]}
    catalog.close()
    ours = [d for d in main.devices if d.pilot == PILOT and d.role != "gateway"]
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPILOT_")}
    env.update(CITYPILOT_STORE_URL=store_url, CITYPILOT_CATALOG_URL=catalog_url,
               CITYPILOT_METRICS_PORT="0")
    log = home / "api.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "citypilot", "api", "--port", str(port)],
                                cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Server(f"http://127.0.0.1:{port}", keys, {d.device for d in ours},
                     {d.kind for d in ours if d.role == "service"}, log)

    def ready() -> dict[str, object]:
        assert proc.poll() is None, f"citypilot api exited: {log.read_text()[-2000:]}"
        try:
            me: dict[str, object] = running.get("/api/v1/me", "operator").json()
        except httpx.TransportError as exc:
            raise AssertionError(f"not answering yet: {exc}") from None
        assert me.get("role") == "operator", me
        return me

    try:
        wait_until(ready, timeout=30, interval=0.2)
        yield running
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "no chromium: `apt-get install chromium` (make test does)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Visit:
    page: Page
    problems: list[str] = field(default_factory=list)  # console errors, page errors, 4xx/5xx
    requests: list[str] = field(default_factory=list)


@pytest.fixture
def visit(browser: Browser, server: Server) -> Iterator[Visit]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    seen = Visit(page)
    page.on("console", lambda m: seen.problems.append(f"console: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.problems.append(f"page error: {e}"))
    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("response", lambda r: seen.problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)

    def offline(route: Route) -> None:
        """Everything must come from citypilot itself: any other request fails the test."""
        if route.request.url.startswith((server.url + "/", "blob:", "data:")):
            route.continue_()
        else:
            seen.problems.append(f"outside request: {route.request.url}")
            route.abort()

    context.route("**/*", offline)
    page.goto(server.url + "/")
    yield seen
    context.close()
