"""Open routes (health, readiness), `/metrics` (an operator key) and `/api/v1/me`; the
console at `/` is api/routes/console.py.

`/readyz` answers 200 only when the store answers a ping and, when a broker is configured,
the broker accepts a TCP connection: a load balancer can then route to this API. It also
reports the rollups' lag, which never fails it (KPIs then read more raw points, slower).
"""

from __future__ import annotations

import asyncio
import logging
import time

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.auth import Operator, Viewer
from api.deps import StoreDep
from api.kpis.periods import from_ns
from api.kpis.rollups.reader import RollupReader
from api.problems import Problem, errors
from api.schemas import Health, Me
from ingest.mqtt.options import MqttConfigError, parse_broker_url
from ingest.stores.base import Reader, StoreError

log = logging.getLogger(__name__)
router = APIRouter()

@router.get("/healthz", response_model=Health, tags=["health"])
async def healthz() -> Health:
    """The process is up (it says nothing about the store)."""
    return Health(status="ok")


async def _broker(url: str, timeout_s: float) -> str:
    try:
        broker = parse_broker_url(url)
    except MqttConfigError as exc:
        return f"misconfigured: {exc}"
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(broker.host, broker.port), timeout_s)
    except (OSError, TimeoutError) as exc:
        return f"unreachable: {type(exc).__name__}"
    writer.close()
    return "ok"


@router.get("/readyz", response_model=Health, tags=["health"], responses=errors(503))
async def readyz(request: Request, store: StoreDep) -> Health:
    """The store answers and the broker accepts connections."""
    options = request.app.state.options
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(store.ping(), options.ready_timeout_s)
        checks["store"] = "ok"
    except (StoreError, TimeoutError) as exc:
        checks["store"] = f"unavailable: {exc}"
    if options.mqtt_url:
        checks["broker"] = await _broker(options.mqtt_url, options.ready_timeout_s)
    failed = any(v != "ok" for v in checks.values())
    checks["rollups"] = await _rollups(store)  # reported; stale rollups only cost speed
    if failed:
        raise Problem(503, "not ready: " + "; ".join(f"{k} {v}" for k, v in checks.items()))
    return Health(status="ready", checks=checks)


async def _rollups(store: Reader) -> str:
    if not isinstance(store, RollupReader):
        return "off"
    try:
        state = await store.horizon.state()
    except StoreError as exc:
        return f"unknown: {exc}"
    if state is None:
        return "not built yet: KPIs read raw points (run `citypilot rollup`)"
    return f"lag {state.lag_s(time.time_ns()):.0f} s"


@router.get("/metrics", tags=["health"], response_class=Response,
            responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                             "description": "Prometheus text format"}, **errors(401, 403)})
async def metrics(request: Request, key: Operator) -> Response:
    """The API's request counters and latencies, for Prometheus, with an operator key (they
    show every route's traffic; Prometheus sends the key as `authorization: {credentials:
    <key>}` in its scrape config)."""
    return Response(generate_latest(request.app.state.metrics.registry),
                    media_type=CONTENT_TYPE_LATEST)


@router.get("/api/v1/me", response_model=Me, tags=["access"], responses=errors(401, 503))
async def me(key: Viewer) -> Me:
    """The calling key: name, role and pilots, so a client asks only for what it may read."""
    return Me(key_id=key.id, name=key.name, role=key.role,
              pilots=sorted(key.pilots) if key.pilots is not None else None,
              expires=from_ns(key.expires_ns) if key.expires_ns is not None else None)
