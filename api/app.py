"""The HTTP API: `create_app(options)` builds it, its lifespan opens the store and catalogue.

No environment is read here: `citypilot api` (the composition root) turns settings into
`ApiOptions` (`api/options.py`). Routes live in `api/routes/`, one module per resource;
errors are problem+json (`problems.py`); keys and roles are checked in `auth.py`. `/`,
`/docs`, `/openapi.json`, `/healthz` and `/readyz` are open; `/metrics` needs an operator
key, every `/api/v1/*` route a key. The open interfaces (`api/open/`: `/ogc`, `/sta/v1.1`,
`/open/v1`, `/catalog*`) answer without a key only for the pilots the registry opens,
rate-limited per client address. Rate and size limits and the security headers every
answer carries are in `guard.py`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram

from api import problems
from api.catalog import Catalog
from api.fleet import Fleet
from api.guard import RateLimit, guard
from api.kpis.rollups.cache import ResultCache
from api.kpis.rollups.reader import RollupReader
from api.open import catalogue, ogc, usage
from api.open.fresh import Fresh
from api.open.inventory import Item, Uptime
from api.open.sta import routes as sta
from api.open.sta.entities import Model
from api.options import ApiOptions
from api.routes import admin, console, data, doctor, inventory, kpis, meta, reports
from ingest.stores import open_reader
from ingest.stores.naming import rollup_url

log = logging.getLogger(__name__)
__all__ = ["ApiOptions", "create_app", "route_paths"]


class Metrics:
    """The API's own Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("citypilot_api_requests", "HTTP requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.seconds = Histogram("citypilot_api_request_seconds", "time to answer",
                                 ["route"], registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))


def zones(catalog: Catalog) -> Callable[[str], ZoneInfo]:
    """A pilot's registered zone; UTC for a pilot seen only in data."""
    def zone(pilot_id: str) -> ZoneInfo:
        pilot = catalog.pilot(pilot_id)
        return ZoneInfo(pilot.timezone if pilot is not None else "UTC")
    return zone


def create_app(options: ApiOptions) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        catalog = Catalog(options.catalog_url)
        deadline = options.store_timeout_s
        try:
            async with open_reader(options.store_url, deadline_s=deadline) as raw, \
                    open_reader(rollup_url(options.store_url), deadline_s=deadline) as rolled:
                # KPIs read the rollups where they hold the answer exactly, raw points
                # elsewhere; every other route reads raw points through the same reader.
                st = RollupReader(raw, rolled, zones(catalog), cache=ResultCache(rolled))
                app.state.store = st
                app.state.catalog = catalog
                app.state.fleet = Fleet(st, catalog,
                                        default_interval_s=options.kpi.default_interval_s)
                app.state.uptime = Uptime(app.state.fleet, options.kpi)
                app.state.sta_models = Fresh[Model]("SensorThings model")
                app.state.open_items = Fresh[list[Item]]("inventory")
                log.info("api ready store=%s", st.url_scheme)
                yield
        finally:
            catalog.close()

    app = FastAPI(title="citypilot API", version="1", lifespan=lifespan,
                  description="KPIs of end-user pull and technology push for Smart City "
                  "pilots, and the data behind them. Errors are RFC 9457 problem+json.")
    app.state.options = options
    app.state.metrics = Metrics()
    app.state.open_limit = RateLimit(options.open_rate_limit, "requests")
    app.state.auth_limit = RateLimit(options.auth_failure_limit, "failed authentications")
    problems.install(app)
    # The console first: its page at `/` takes the place of meta's placeholder.
    for router in (console.router, meta.router, data.router, kpis.router, reports.router,
                   admin.router, doctor.router, inventory.router, ogc.router, usage.router,
                   sta.router, catalogue.router):
        app.include_router(router)
    app.middleware("http")(guard)
    app.middleware("http")(_measure)  # the outer one: it counts the guard's refusals too

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.document_errors(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


def route_paths() -> list[str]:
    """The path templates of the API's routes, from its OpenAPI document: the app is built,
    not started, so no store or catalogue is opened (`citypilot dashboards check` checks the
    dashboards' API targets against them)."""
    app = create_app(ApiOptions(store_url="sqlite:///:memory:", catalog_url="sqlite://"))
    return list(app.openapi()["paths"])


async def _measure(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                   ) -> Response:
    began = time.perf_counter()
    response = await call_next(request)
    route = request.scope.get("route")
    name = getattr(route, "path", "unmatched")
    metrics: Metrics = request.app.state.metrics
    metrics.requests.labels(name, request.method, str(response.status_code)).inc()
    metrics.seconds.labels(name).observe(time.perf_counter() - began)
    return response
