"""`citypilot up --demo`: everything in one process, nothing to install.

An embedded MQTT broker (amqtt: pure Python, so no root and no Mosquitto needed), the
collector with the SQLite store, the rollup worker (a pass every `ROLLUP_INTERVAL_S`, so the
KPIs of the backfilled history read rollups as in production), and the simulators publishing a
small pilot, with a live summary on stderr (`status.py`: a table redrawn in place on a
terminal, a line per interval otherwise). The embedded broker speaks only MQTT 3.1.1, so the
collector falls back to it (logged); production runs Mosquitto (see deploy/).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from citypilot.settings import Settings
from citypilot.status import CurrentRate, History, report, summary_line
from citypilot.wiring import build_collector, run_until_signalled
from ingest.collector import Collector
from ingest.gateway.broker import embedded_broker

if TYPE_CHECKING:
    from api.catalog import Registry
    from api.options import ApiOptions
    from simulators.deployment import DeviceInfo
    from simulators.summary import Planned

log = logging.getLogger(__name__)


def pick_port(preferred: int) -> int:
    """The preferred port when it is free, else any free loopback port."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise OSError("no free port on 127.0.0.1")


ROLLUP_INTERVAL_S = 10.0  # the production default is 60 s; a demo should not make you wait


async def _rollups(settings: Settings, history: History) -> None:
    from api.kpis.rollups.cli import open_worker

    options = _api_options(settings)
    async with open_worker(options.store_url, options.catalog_url,
                           options.store_timeout_s) as worker:
        # The worker logs its passes; the summary notes the first to cover the history.
        await worker.run_forever(ROLLUP_INTERVAL_S,
                                 lambda done: history.rolled_up(done.state.passed_at))


class Backfill:
    """The simulators' history, stored through the collector's decoders and store in large
    batches (`HistorySink`; called from the simulator's thread): over the embedded broker,
    four weeks took about three minutes, and amqtt can time out waiting for PUBACKs under
    that load."""

    def __init__(self, collector: Collector, history: History,
                 loop: asyncio.AbstractEventLoop) -> None:
        self.collector, self.history, self.loop = collector, history, loop

    def store(self, batch: list[Planned]) -> None:
        asyncio.run_coroutine_threadsafe(self._store(batch), self.loop).result(
            timeout=STORE_TIMEOUT_S)

    async def _store(self, batch: list[Planned]) -> None:
        # Received now, as over MQTT: the ingest delay of history is its age.
        await self.collector.ingest([(m.topic, m.payload) for m in batch], time.time_ns())
        self.history.stored_batch(batch[0].at_ms, batch[-1].at_ms)

    def done(self) -> None:
        self.loop.call_soon_threadsafe(self.history.stored_all)


STORE_TIMEOUT_S = 120.0  # the longest a batch of history may take to store
Feed = Callable[[str, Backfill], Coroutine[Any, Any, object]]


async def run(settings: Settings, *, port: int, api_port: int | None,
              publisher: Feed | None, backfill_s: float = 0.0,
              report_every_s: float = 2.0) -> None:
    """Broker, collector, API (when `api_port`), publisher (live over MQTT, its backfill of
    `backfill_s` through `Backfill`); until SIGTERM/SIGINT."""
    history = History(backfill_s, time.monotonic())
    async with embedded_broker("127.0.0.1", port):
        await _run_on(settings, port, api_port, publisher, report_every_s, history)


async def _run_on(settings: Settings, port: int, api_port: int | None,
                  publisher: Feed | None, report_every_s: float, history: History) -> None:
    url = f"mqtt://127.0.0.1:{port}"
    collector = build_collector(settings, mqtt_url=url, mqtt_protocol="3.1.1")  # amqtt
    lines = [f"citypilot demo\n  broker   {url} (embedded; publish to citypilot/v1/<pilot>/"
             f"<gateway>/<device>/telemetry)", f"  store    {settings.store_url}"]
    if api_port:
        key = demo_key(settings)
        lines += [f"  console  http://127.0.0.1:{api_port}/  (API docs: /docs)",
                  f"  API key  {key}   (admin; send as Authorization: Bearer <key>)"]
    if settings.metrics_port:
        lines.append(f"  metrics  http://127.0.0.1:{settings.metrics_port}/metrics")
    lines.append("  inspect  citypilot deadletters list    (Ctrl-C stops the demo)\n")
    sys.stderr.write("\n".join(lines))
    overall = CurrentRate(collector.stats.received, time.monotonic())
    async with asyncio.TaskGroup() as tg:
        run_task = tg.create_task(run_until_signalled(collector), name="collector")
        helpers: list[asyncio.Task[Any]] = [
            tg.create_task(report(collector.stats, report_every_s, history=history),
                           name="summary"),
            tg.create_task(_rollups(settings, history), name="rollups")]
        if api_port:
            helpers.append(tg.create_task(_serve_api(settings, api_port), name="api"))
        await collector.subscriber.wait_connected(30)
        if publisher:
            backfill = Backfill(collector, history, asyncio.get_running_loop())
            helpers.append(tg.create_task(publisher(url, backfill), name="publisher"))
        await run_task
        for task in helpers:
            task.cancel()
    average = overall.update(collector.stats.received, time.monotonic())
    sys.stderr.write(summary_line(collector.stats, average, history) + "\n")


def fleet_registry(devices: Iterable[DeviceInfo], timezones: Mapping[str, str] | None = None
                   ) -> Registry:
    """The simulated pilots as an operator would register them: each device's kind or
    service, reporting interval and capacity, so that KPIs expect what the devices send
    (unregistered, they would be expected every `default_interval_s`)."""
    from api.catalog import Device, Pilot, Registry

    by_pilot: dict[str, list[Device]] = {}
    for d in devices:
        if d.role != "gateway":
            sensor = d.role == "sensor"
            by_pilot.setdefault(d.pilot, []).append(Device(
                id=d.device, gateway=d.gateway, interval_s=d.interval_s,
                kind=d.kind if sensor else None, service=None if sensor else d.kind,
                capacity=d.capacity))
    return Registry(pilots=tuple(
        Pilot(id=p, name=p.replace("-", " ").title(), timezone=(timezones or {}).get(p, "UTC"),
              devices=tuple(found)) for p, found in by_pilot.items()))


def register_fleet(settings: Settings, devices: Iterable[DeviceInfo]) -> list[str]:
    """Load the simulated pilots into the catalogue (replacing earlier demo entries)."""
    from api.catalog import Catalog

    catalog = Catalog(settings.catalog_url)
    try:
        return catalog.load(fleet_registry(devices))
    finally:
        catalog.close()


def demo_key(settings: Settings) -> str:
    """A fresh admin key named `demo` in the catalogue (older demo keys are revoked)."""
    from api.catalog import Catalog, Role

    catalog = Catalog(settings.catalog_url)
    try:
        for old in catalog.keys():
            if old.name == "demo":
                catalog.revoke(old.id)
        _, key = catalog.create_key("demo", Role.ADMIN)
    finally:
        catalog.close()
    return key


async def _serve_api(settings: Settings, port: int) -> None:
    from api.app import create_app
    from ingest.collector.metrics import serve

    await serve(create_app(_api_options(settings)), "127.0.0.1", port, lifespan=True)


def _api_options(settings: Settings) -> ApiOptions:
    from api.options import ApiOptions

    return ApiOptions(store_url=settings.store_url, catalog_url=settings.catalog_url,
                      max_points=settings.api_max_points)  # its own read deadline
