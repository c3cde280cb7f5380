"""Running a simulation: history first, then live, then wait for every acknowledgement.

`run(options)` is the plain, blocking entry point (the `citypilot simulate` command calls it);
`run_async(options)` runs it in a worker thread so that `citypilot up --demo` can await it in
the same asyncio loop as the collector, and cancel it like any task. The options are a plain
frozen dataclass: nothing here reads the environment.

The backfill covers `[start - backfill, start)` at each device's own interval and is published
as fast as the broker acknowledges, or handed in batches to a `history` sink when one is given
(`citypilot up --demo` stores weeks of history that way, through the collector's decoders,
in seconds rather than minutes over its embedded broker). The live phase covers
`[live_start, live_start + duration)` with every interval shrunk to make `rate` messages/s,
paced by the wall clock. `live_start` is `start` when it was pinned (a reproducible run: same
seed, same start, same bytes) and otherwise the wall clock when the backfill is done, so live
timestamps are real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ingest.model import MIN_TS_NS
from ingest.mqtt.options import parse_broker_url
from simulators.deployment import FleetSpec
from simulators.faults import Fault, FaultSpec
from simulators.publisher import (
    Cancelled,
    Pace,
    SimPublisher,
    SimPublisherConfig,
)
from simulators.scenario import Scenario
from simulators.summary import Planned, Summary

log = logging.getLogger(__name__)

DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


@dataclass(frozen=True, slots=True)
class SimulateOptions:
    """Everything a run needs. `rate` 0: as fast as possible for `duration_s` of wall time."""

    pilots: int = 1
    gateways: int = 2
    devices: int = 7
    rate: float = 20.0
    duration_s: float = 60.0
    faults: float = 0.0
    seed: int = 42
    mqtt_url: str = DEFAULT_MQTT_URL
    backfill_s: float = 0.0
    pilot_prefix: str = "pilot"
    start_ms: int | None = None
    fault_weights: Mapping[Fault, float] | None = None
    window: int = 1_000
    client_id: str | None = None
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 60.0

    @property
    def fleet(self) -> FleetSpec:
        return FleetSpec(self.pilots, self.gateways, self.devices, self.seed, self.pilot_prefix)

    def __post_init__(self) -> None:
        if self.rate < 0 or self.duration_s < 0 or self.backfill_s < 0:
            raise ValueError("rate, duration and backfill must not be negative")
        if self.window < 1:
            raise ValueError("window must be at least 1")


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for a progress line; handed to the callback from the simulator's thread."""

    phase: str
    published: int
    acked: int
    in_flight: int
    elapsed_s: float


ProgressCallback = Callable[[Progress], None]
HISTORY_BATCH = 5_000  # messages per `HistorySink.store`


class HistorySink(Protocol):
    """Where the backfill goes instead of the broker; called from the simulator's thread."""

    def store(self, batch: list[Planned]) -> None:
        """Return once `batch` (in due order) is stored."""

    def done(self) -> None:
        """The whole backfill is stored."""


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def run(options: SimulateOptions, *, cancel: threading.Event | None = None,
        progress: ProgressCallback | None = None, history: HistorySink | None = None
        ) -> Summary:
    """Publish the simulation and return what was sent once the broker acknowledged all of it
    (the backfill goes to `history` instead, when given).

    Raises `PublishError` (broker unreachable, refused, acks missing) or `ValueError` (bad
    options). When `cancel` is set the run stops soon after, disconnects, and returns the
    summary of what it published so far with `cancelled` true.
    """
    start = options.start_ms if options.start_ms is not None else _now_ms()
    if start > _now_ms() + 60_000:
        raise ValueError("the start is in the future: a collector rejects such timestamps")
    if start - options.backfill_s * 1000 < MIN_TS_NS // 1_000_000:
        raise ValueError("the backfill reaches before 2000-01-01: a collector rejects it")
    weights = options.fault_weights
    spec = FaultSpec(options.faults, weights) if weights is not None else FaultSpec(options.faults)
    scenario = Scenario(options.fleet, spec)
    url = parse_broker_url(options.mqtt_url)
    config = SimPublisherConfig(url, options.client_id or f"citypilot-sim-{uuid.uuid4().hex[:12]}",
                             window=options.window,
                             connect_timeout_s=options.connect_timeout_s,
                             ack_timeout_s=options.ack_timeout_s)
    summary = Summary(phase="backfill" if options.backfill_s else "live")
    began = time.monotonic()
    publisher = SimPublisher(config, cancel)
    if progress is not None:
        def beat() -> None:
            progress(Progress(summary.phase, publisher.published, publisher.acked,
                              publisher.in_flight, time.monotonic() - began))
        publisher.heartbeat = beat
    try:
        with publisher:
            _phases(options, scenario, publisher, summary, start, history)
    except Cancelled:
        summary.cancelled = True
        log.info("simulation cancelled after %d messages", publisher.published)
    summary.acked, summary.refused = publisher.acked, publisher.refused
    summary.meta.update({
        "seed": options.seed, "pilots": options.pilots, "gateways": options.pilots
        * options.gateways, "devices": options.pilots * options.gateways * options.devices,
        "protocol": publisher.protocol, "broker": str(url), "rate": options.rate,
        "elapsed_s": round(time.monotonic() - began, 3),
    })
    return summary


def _phases(options: SimulateOptions, scenario: Scenario, publisher: SimPublisher,
            summary: Summary, start: int, history: HistorySink | None) -> None:
    backfill_ms = round(options.backfill_s * 1000)
    if backfill_ms:
        summary.phase = "backfill"
        log.info("backfill: %g s of history before %d", options.backfill_s, start)
        messages = scenario.window(start - backfill_ms, start)
        if history is None:
            publisher.send(messages, summary.record)
        else:
            _hand_over(messages, summary, history, publisher.cancel)
    summary.phase = "live"
    live_start = start if options.start_ms is not None else max(start, _now_ms())
    speedup = scenario.speedup_for(options.rate, live_start)
    duration_ms = round(options.duration_s * 1000)
    wall0 = time.monotonic()
    stop_at = wall0 + options.duration_s if options.rate == 0 else None
    summary.meta.update({"backfill_start_ms": start - backfill_ms, "live_start_ms": live_start,
                         "end_ms": live_start + duration_ms, "speedup": round(speedup, 3)})
    publisher.send(scenario.window(live_start, live_start + duration_ms, speedup),
                   summary.record, Pace(live_start, wall0, stop_at))
    publisher.drain()


def _hand_over(messages: Iterable[Planned], summary: Summary, history: HistorySink,
               cancel: threading.Event) -> None:
    """The messages in batches to `history`, counted as published ones are (suppressed ones
    too: they are faults)."""
    batch: list[Planned] = []
    for message in messages:
        summary.record(message.expect)
        if message.expect.send:
            batch.append(message)
        if len(batch) >= HISTORY_BATCH:
            if cancel.is_set():
                raise Cancelled
            history.store(batch)
            batch = []
    if batch:
        history.store(batch)
    history.done()


async def run_async(options: SimulateOptions, *, progress: ProgressCallback | None = None,
                    history: HistorySink | None = None) -> Summary:
    """`run` in a worker thread, awaitable and cancellable: cancelling the awaiting task stops
    the simulation (within a fraction of a second), lets it disconnect, and re-raises
    CancelledError. `progress` and `history` are called from the worker thread."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Summary] = loop.create_future()
    cancel = threading.Event()

    def settle(result: Summary | None, error: BaseException | None) -> None:
        if done.done():
            return
        if error is not None:
            done.set_exception(error)
        else:
            assert result is not None
            done.set_result(result)

    def work() -> None:
        try:
            result = run(options, cancel=cancel, progress=progress, history=history)
        except BaseException as exc:  # handed to the awaiting task, not lost in the thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                loop.call_soon_threadsafe(settle, None, exc)
        else:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(settle, result, None)

    thread = threading.Thread(target=work, name="citypilot-simulate", daemon=True)
    thread.start()
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(asyncio.shield(done), timeout=10.0)
        raise
