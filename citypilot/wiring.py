"""From settings to running parts: the composition root's one place that builds the
collector's options and the store, so `collect` and `up` wire them the same way."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from citypilot.settings import Settings
from ingest.collector import Collector, CollectorOptions
from ingest.decode import Limits
from ingest.mqtt import MqttOptions
from ingest.stores import open_store
from ingest.stores.base import Store

log = logging.getLogger(__name__)


def collector_options(s: Settings, *, mqtt_url: str | None = None,
                      spool_dir: Path | None = None, metrics_port: int | None = None
                      ) -> CollectorOptions:
    in_flight = 2
    mqtt = MqttOptions(
        url=mqtt_url or s.mqtt_url, client_id=s.mqtt_client_id,
        session_expiry_s=s.mqtt_session_expiry_s,
        receive_maximum=min(65535, s.batch_max_messages * in_flight),
        ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
        tls_insecure=s.mqtt_tls_insecure)
    return CollectorOptions(
        mqtt=mqtt, spool_dir=spool_dir or s.spool_dir, share_group=s.mqtt_share_group,
        spool_max_bytes=s.spool_max_bytes, batch_max_messages=s.batch_max_messages,
        batch_interval_s=s.batch_interval_s, max_batches_in_flight=in_flight,
        limits=Limits(max_payload_bytes=s.max_payload_bytes, max_future_s=s.max_future_s),
        metrics_port=s.metrics_port if metrics_port is None else metrics_port)


def store(s: Settings) -> Store:
    return open_store(s.store_url, timeout_s=s.store_timeout_s)


def build_collector(s: Settings, **overrides: object) -> Collector:
    return Collector(collector_options(s, **overrides), store(s))  # type: ignore[arg-type]


async def run_until_signalled(collector: Collector) -> None:
    """Run the collector; SIGTERM or SIGINT flushes what it holds and returns."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, collector.stop)
    try:
        await collector.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
