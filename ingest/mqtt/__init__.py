"""citypilot's MQTT, behind one package: nothing else in `ingest` imports an MQTT library
(the simulators keep their own fast paho publisher, configured from `options`). What the rest
of the code uses is named in `__all__`:

- `Subscriber`, the collector's QoS-1 subscription acknowledged by the caller: MQTT 5 through
  `stream` (asyncio streams and the `mqtt5` codec), or MQTT 3.1.1 through `paho` when the
  broker refuses MQTT 5;
- `Publisher`, the gateway agent's QoS-1 publisher (`paho`), with its last `Will`;
- `options`: broker URLs, `MqttOptions`, the TLS context, backoff, and the errors.

Every `wait_connected` here returns once connected and raises `MqttTimeout` otherwise.
"""

from __future__ import annotations

import asyncio
import logging
import time
from types import TracebackType
from typing import Self

from ingest.mqtt.drops import DROPPED_TOPIC, BrokerDrops
from ingest.mqtt.inbox import Message
from ingest.mqtt.options import (
    BrokerUrl,
    MqttConfigError,
    MqttOptions,
    MqttTimeout,
    client_tls,
    parse_broker_url,
    redact_url,
    wait_until_connected,
)
from ingest.mqtt.paho import PahoSubscriber, Publisher, Will, topic_matches
from ingest.mqtt.stream import ProtocolRefused, StreamSubscriber

__all__ = [
    "DROPPED_TOPIC",
    "BrokerDrops",
    "BrokerUrl",
    "Message",
    "MqttConfigError",
    "MqttOptions",
    "MqttTimeout",
    "PahoSubscriber",
    "ProtocolRefused",
    "Publisher",
    "StreamSubscriber",
    "Subscriber",
    "Will",
    "client_tls",
    "parse_broker_url",
    "redact_url",
    "topic_matches",
]

log = logging.getLogger(__name__)


class Subscriber:
    """A QoS-1 subscription acknowledged by the caller: MQTT 5 through the fast stream
    subscriber (`ingest.mqtt.stream`), or MQTT 3.1.1 through paho when the broker refuses
    MQTT 5 (logged). Enter it, then `take()`, `ack()`, `publish()` as on either.

    With `watch_drops` it also subscribes to the broker's count of dropped messages
    (`ingest.mqtt.drops`): those messages come out of `take()` among the others, to be
    acknowledged in order with them, and `observe()` takes them."""

    def __init__(self, options: MqttOptions, filters: list[str], *,
                 watch_drops: bool = False) -> None:
        self.options = options
        self.filters = [*filters, DROPPED_TOPIC] if watch_drops else filters
        self.drops = BrokerDrops(str(options.broker)) if watch_drops else None
        self._impl: StreamSubscriber | PahoSubscriber | None = None
        self._interrupted = False
        self._chosen = asyncio.Event()

    async def __aenter__(self) -> Self:
        impl: StreamSubscriber | PahoSubscriber
        if self.options.protocol == "3.1.1":
            impl = await PahoSubscriber(self.options, self.filters).__aenter__()
        else:
            fast = StreamSubscriber(self.options, self.filters)
            try:
                await fast.probe()
                impl = fast
            except ProtocolRefused as exc:
                if self.options.protocol == "5":
                    raise
                log.warning("%s; falling back to MQTT 3.1.1 (the broker's in-flight limit, "
                            "not our Receive Maximum, then bounds throughput)", exc)
                impl = await PahoSubscriber(self.options, self.filters).__aenter__()
        if self._interrupted:
            impl.interrupt()
        self._impl = impl
        self._chosen.set()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._impl is not None:
            await self._impl.__aexit__(et, e, tb)

    @property
    def _on(self) -> StreamSubscriber | PahoSubscriber:
        if self._impl is None:
            raise RuntimeError("enter the Subscriber first (async with)")
        return self._impl

    @property
    def protocol(self) -> str:
        return self._impl.protocol if self._impl is not None else "?"

    @property
    def connected(self) -> bool:
        return self._impl is not None and self._impl.connected

    async def wait_connected(self, within_s: float | None = None) -> None:
        """Return once subscribed; raise MqttTimeout after `within_s` (default: the
        options' connect timeout)."""
        limit = within_s or self.options.connect_timeout_s
        started = time.monotonic()
        await wait_until_connected(self._chosen, limit, self.options.broker)
        await self._on.wait_connected(max(0.1, limit - (time.monotonic() - started)))

    async def take(self, max_messages: int, max_wait_s: float,
                   max_bytes: int = 1 << 62) -> list[Message]:
        return await self._on.take(max_messages, max_wait_s, max_bytes)

    def take_nowait(self, max_messages: int, max_bytes: int = 1 << 62) -> list[Message]:
        return self._on.take_nowait(max_messages, max_bytes)

    def ack(self, messages: list[Message]) -> int:
        return self._on.ack(messages)

    def observe(self, msg: Message) -> bool:
        """True when `msg` is the broker's drop count (taken in `drops`), not data."""
        if self.drops is None or msg.topic != DROPPED_TOPIC:
            return False
        self.drops.observe(msg.payload)
        return True

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        if self._impl is None:
            log.warning("not connected yet: dropped the publish to %s", topic)
            return
        self._impl.publish(topic, payload, qos)

    def interrupt(self) -> None:
        self._interrupted = True
        if self._impl is not None:
            self._impl.interrupt()

    @property
    def backlog(self) -> int:
        return self._impl.backlog if self._impl is not None else 0
