"""The collector's own health: Prometheus counters and the `/metrics`, `/healthz`, `/readyz`
endpoints (never in the store: DESIGN.md keeps the store for pilot data). `build_app` and
`serve` also serve the gateway agent's health; `serve`, the rollup worker's and the demo API.

Each collector owns a `CollectorRegistry` (no import-time global), so several collectors can
run in one process (tests, `citypilot up`). The HTTP side is a tiny Starlette app on uvicorn
in the collector's own event loop; the port is bound first, so a busy port is a logged
warning, not a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Iterator

import uvicorn
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

log = logging.getLogger(__name__)


class CollectorMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("citypilot_messages_received", "MQTT messages received",
                                registry=r)
        self.stored = Counter("citypilot_points_stored", "points written to the store "
                              "(live and drained from the spool)", registry=r)
        self.rejected = Counter("citypilot_messages_rejected", "dead letters by reason",
                                ["reason"], registry=r)
        self.skipped = Counter("citypilot_messages_skipped", "messages of a source format "
                               "that carry no readings", registry=r)
        self.unknown_metrics = Counter("citypilot_unknown_metric_values", "values whose "
                                       "metric name the registry does not know", registry=r)
        self.spooled = Counter("citypilot_points_spooled", "points written to the on-disk "
                               "spool because the store was unavailable (once each, however "
                               "often they wait again)", registry=r)
        self.spool_dropped = Gauge("citypilot_spool_dropped_points", "points the full spool "
                                   "dropped (oldest first), since the spool was created",
                                   registry=r)
        self.spool_depth = Gauge("citypilot_spool_depth_points", "points waiting in the spool",
                                 registry=r)
        self.spool_up = Gauge("citypilot_spool_up", "1 while the spool takes writes; 0 "
                              "after a failure (disk full, read-only, unopenable)", registry=r)
        self.spool_up.set(1)
        self.spool_errors = Counter("citypilot_spool_errors", "spool operations that failed",
                                    registry=r)
        self.spool_skipped = Gauge("citypilot_spool_skipped_records", "spooled records found "
                                   "unreadable (a damaged file) or undecodable and skipped, "
                                   "since the spool was created", registry=r)
        self.withheld = Gauge("citypilot_messages_withheld", "messages held unacknowledged "
                              "because neither the store nor the spool takes them",
                              registry=r)
        self.store_latency = Histogram(
            "citypilot_store_write_seconds", "store write latency per batch", registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.store_up = Gauge("citypilot_store_up", "1 when the last store write succeeded",
                              registry=r)
        self.broker_dropped = Gauge(
            "citypilot_broker_dropped_messages", "messages the broker dropped for full "
            "client queues since it started, as it publishes the count in $SYS (Mosquitto)",
            ["broker"], registry=r)
        self.mqtt_connected = Gauge("citypilot_mqtt_connected", "1 while connected to the "
                                    "broker", registry=r)


def build_app(registry: CollectorRegistry,
              ready: Callable[[], tuple[bool, dict[str, object]]]) -> Starlette:
    """`/metrics` of this registry, `/healthz`, and `/readyz` from `ready` (503 when not)."""
    async def prometheus(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ok, detail = ready()
        return JSONResponse({"ready": ok, **detail}, status_code=200 if ok else 503)

    return Starlette(routes=[Route("/metrics", prometheus), Route("/healthz", healthz),
                             Route("/readyz", readyz)])


SHUTDOWN_S = 10.0  # the longest a graceful HTTP shutdown may take once cancelled


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the collector owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: Starlette, host: str, port: int, *, lifespan: bool = False,
                setting: str = "CITYPILOT_METRICS_PORT") -> None:
    """Serve until cancelled; a port already in use is logged (naming the `setting` that
    chooses it) and the process goes on without it."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        log.warning("metrics port %s:%d unavailable (%s); /metrics, /healthz and /readyz are "
                    "off for this process (set %s)", host, port, exc, setting)
        await asyncio.Event().wait()  # stay a quiet task until the collector stops
        return
    config = uvicorn.Config(app, log_level="warning", lifespan="on" if lifespan else "off",
                            access_log=False, log_config=None)
    server = _Server(config)
    log.info("serving http://%s:%d/", host, port)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        await asyncio.shield(serving)
    except asyncio.CancelledError:
        # Shut down as uvicorn does on a signal (the app's lifespan ends cleanly); cancelling
        # its task mid-lifespan logged a CancelledError traceback at every Ctrl-C of the demo.
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, SHUTDOWN_S)
        raise
    finally:
        sock.close()
