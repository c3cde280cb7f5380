"""The rollup worker's `/metrics` and `/healthz`: how far behind the rollups are.

`citypilot_rollup_lag_seconds` is the time since the last finished pass began (writes since
then are not in the rollups yet; the hour in progress is always read raw), so an alert on it
catches a stopped or failing worker. Its own registry: nothing global.
"""

from __future__ import annotations

import math
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from api.kpis.rollups.worker import Worker


def lag_app(worker: Worker) -> Starlette:
    registry = CollectorRegistry()

    def lag() -> float:
        return worker.last.state.lag_s(time.time_ns()) if worker.last else math.inf

    Gauge("citypilot_rollup_lag_seconds", "seconds since the last finished rollup pass began",
          registry=registry).set_function(lag)
    Gauge("citypilot_rollup_complete_until_seconds", "every ended hour before this (Unix "
          "time) is rolled up", registry=registry).set_function(
        lambda: worker.last.state.complete_until / 1e9 if worker.last else 0.0)

    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "lag_s": None if worker.last is None
                             else round(lag(), 1)})

    return Starlette(routes=[Route("/metrics", prometheus), Route("/healthz", healthz)])
