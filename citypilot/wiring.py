"""From settings to running parts: the composition root's one place that builds the
collector's options and the store, so `collect` and `up` wire them the same way."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from dataclasses import replace
from pathlib import Path

from citypilot.settings import Settings
from ingest.collector import Collector, CollectorOptions, Connection, Route
from ingest.decode import Limits
from ingest.decode.sources import Source, decoder_for, load_sources
from ingest.mqtt import MqttOptions
from ingest.stores import open_reader, open_store
from ingest.stores.base import Reader, Store

log = logging.getLogger(__name__)


def collector_options(s: Settings, *, mqtt_url: str | None = None,
                      spool_dir: Path | None = None, metrics_port: int | None = None,
                      mqtt_protocol: str = "auto") -> CollectorOptions:
    in_flight = 4  # batches being written while the next is decoded
    mqtt = MqttOptions(
        url=mqtt_url or s.mqtt_url, client_id=s.mqtt_client_id,
        session_expiry_s=s.mqtt_session_expiry_s,
        receive_maximum=min(65535, s.batch_max_messages * in_flight),
        ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
        tls_insecure=s.mqtt_tls_insecure, protocol=mqtt_protocol)
    limits = Limits(max_payload_bytes=s.max_payload_bytes, max_future_s=s.max_future_s)
    main, others = source_routes(load_sources(s.sources), mqtt, limits)
    return CollectorOptions(
        mqtt=mqtt, spool_dir=spool_dir or s.spool_dir, share_group=s.mqtt_share_group,
        spool_max_bytes=s.spool_max_bytes, batch_max_messages=s.batch_max_messages,
        batch_max_bytes=s.batch_max_bytes,
        batch_interval_s=s.batch_interval_s, max_batches_in_flight=in_flight, limits=limits,
        metrics_port=s.metrics_port if metrics_port is None else metrics_port,
        routes=main, connections=others)


def source_routes(sources: list[Source], mqtt: MqttOptions, limits: Limits
                  ) -> tuple[tuple[Route, ...], tuple[Connection, ...]]:
    """Routes on the main broker, and one connection per other broker (its client id is the
    collector's plus the first source's name, so it keeps a persistent session too)."""
    main: list[Route] = []
    others: dict[str, list[tuple[Source, Route]]] = {}
    for src in sources:
        route = Route(src.topic, decoder_for(src, limits))
        if src.mqtt_url is None or src.mqtt_url == mqtt.url:
            main.append(route)
        else:
            others.setdefault(src.mqtt_url, []).append((src, route))
    connections = tuple(
        Connection(replace(mqtt, url=url, client_id=f"{mqtt.client_id}-{group[0][0].name}"),
                   tuple(r for _, r in group))
        for url, group in others.items())
    return tuple(main), connections


def store(s: Settings) -> Store:
    # How long a write may keep failing before its batch is spooled.
    return open_store(s.store_url, deadline_s=s.store_timeout_s)


def reader(s: Settings) -> Reader:
    return open_reader(s.store_url, deadline_s=s.store_timeout_s)


def build_collector(s: Settings, **overrides: object) -> Collector:
    return Collector(collector_options(s, **overrides), store(s))  # type: ignore[arg-type]


async def run_until_signalled(collector: Collector) -> None:
    """Run the collector; SIGTERM or SIGINT flushes what it holds and returns."""
    # The hot path allocates many short-lived objects without cycles (points, dicts); the
    # cyclic GC walking them took about a third of the CPU with arrays of readings
    # (bench/README.md). Freeze what start-up made and collect generation 0 less often.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, collector.stop)
    try:
        await collector.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
