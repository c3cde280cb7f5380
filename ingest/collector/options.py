"""What a collector is told: its broker, routes, spool and batching (`CollectorOptions`),
and the running totals it keeps (`Stats`)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ingest.decode import Decoder, Limits
from ingest.mqtt import MqttOptions


@dataclass(frozen=True, slots=True)
class Route:
    """A subscription filter and the decoder for what arrives on it."""

    filter: str
    decoder: Decoder


@dataclass(frozen=True, slots=True)
class Connection:
    """Another broker (a source's `mqtt_url`) and the routes subscribed on it."""

    mqtt: MqttOptions
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class CollectorOptions:
    mqtt: MqttOptions
    spool_dir: Path
    share_group: str | None = None
    spool_max_bytes: int = 1 << 30
    batch_max_messages: int = 2000
    batch_max_bytes: int = 1 << 20  # arrays of readings: bound a batch's points, not messages
    batch_interval_s: float = 0.02
    max_batches_in_flight: int = 2
    limits: Limits = field(default_factory=Limits)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 0
    routes: tuple[Route, ...] = ()  # sources on the main broker, beside the native topics
    connections: tuple[Connection, ...] = ()  # sources on other brokers
    drain_interval_s: float = 1.0


@dataclass(slots=True)
class Stats:
    """Running totals, for the demo's live summary (Prometheus has the same figures)."""

    received: int = 0
    stored: int = 0
    spooled: int = 0
    dead_letters: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)
