"""The paho-mqtt 2.x side of citypilot's MQTT: the MQTT 3.1.1 fallback subscriber (for
brokers that refuse MQTT 5, like the demo's embedded one) and the gateway agent's QoS-1
`Publisher`, plus `topic_matches` for the collector and replay.

Acknowledging a QoS-1 message only once it is durable needs manual acks, which aiomqtt 2.x
does not expose yet; paho does (`manual_ack=True`, `ack(mid, qos)`). Its network
loop runs in its own thread and messages cross into asyncio through the shared `Inbox`.
paho reconnects by itself with a plain doubling delay; `_Reconnects` sets each of those waits
to our jittered one. tests/integration/test_mqtt_ack.py holds messages unacknowledged and
reconnects, so a paho upgrade that breaks manual acks fails a test.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt.drops import fatal_refusals
from ingest.mqtt.inbox import Inbox, Message, call_in_loop
from ingest.mqtt.options import (
    BrokerUrl,
    ConnectionState,
    MqttOptions,
    client_tls,
    reconnect_delay_s,
)

log = logging.getLogger(__name__)


def make_client(options: MqttOptions, protocol: MQTTProtocolVersion, *,
                manual_ack: bool, clean: bool) -> tuple[paho.Client, BrokerUrl]:
    """A configured paho client (credentials, TLS) that is not yet connected."""
    broker = options.broker
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=options.client_id,
                         clean_session=None if v5 else clean, protocol=protocol,
                         manual_ack=manual_ack)
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    context = client_tls(broker, options.ca_file, options.tls_insecure)
    if context is not None:
        client.tls_set_context(context)  # an unverifying context also skips the host check
    return client, broker


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether `topic` falls under the subscription filter `pattern` (`+`, `#`)."""
    return bool(paho.topic_matches_sub(pattern, topic))


class _Reconnects:
    """Jittered backoff for paho's own reconnect loop: on every loss or failed attempt (paho
    calls back before it waits) the next wait is set to `reconnect_delay_s`; a successful
    CONNACK starts the sequence again."""

    def __init__(self) -> None:
        self.attempt = 0

    def failed(self, client: paho.Client) -> float:
        """Set the wait before paho's next attempt; returns it."""
        delay = reconnect_delay_s(self.attempt, random.random(), base_s=1.0)
        self.attempt += 1
        # paho annotates int seconds but waits float ones (`time` arithmetic).
        client.reconnect_delay_set(delay, delay)  # type: ignore[arg-type]
        return delay

    def connect_failed(self, client: paho.Client, broker: BrokerUrl) -> None:
        """paho's `on_connect_fail`, called inside its `except OSError`: say why."""
        delay = self.failed(client)
        error = sys.exception()
        log.warning("cannot connect to %s (%s); retrying in %.1f s", broker,
                    error or "connection failed", delay)
        if error is not None:
            _close_dropped_tls_socket(error)

    def succeeded(self) -> None:
        self.attempt = 0


def _close_dropped_tls_socket(error: BaseException) -> None:
    """paho 2.2 drops, without closing, the TLS socket whose handshake failed (a file
    descriptor and a ResourceWarning per retry until the garbage collector runs). The socket
    is still a local of a frame in the error's traceback: close it there."""
    tb = error.__traceback__
    while tb is not None:
        for value in tb.tb_frame.f_locals.values():
            if isinstance(value, ssl.SSLSocket):
                value.close()
        tb = tb.tb_next


def start_client(client: paho.Client, broker: BrokerUrl, options: MqttOptions,
                 reconnects: _Reconnects) -> None:
    """Connect in paho's own network thread, which also reconnects with `reconnects`."""
    client.on_connect_fail = lambda _client, _userdata: reconnects.connect_failed(client, broker)
    client.connect_async(broker.host, broker.port, keepalive=options.keepalive_s)
    client.loop_start()
    log.info("connecting to %s as %r (MQTT 3.1.1)", broker, options.client_id)


class PahoSubscriber(Inbox, ConnectionState):
    """The MQTT 3.1.1 subscription (paho), for brokers that refuse MQTT 5: the same manual-ack
    interface as `ingest.mqtt.stream.StreamSubscriber`; `Subscriber` picks between them.

    `take()` returns messages in arrival order; `ack()` acknowledges them. Acks for messages
    of an earlier connection are never sent: after a reconnect the broker redelivers them
    (and may have reused their packet ids), and they are stored again, idempotently.
    """

    protocol = "3.1.1"

    def __init__(self, options: MqttOptions, filters: list[str]) -> None:
        super().__init__()
        self.options = options
        self.filters = filters
        self._connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._generation = 0
        self._gen_lock = threading.Lock()
        self._client: paho.Client | None = None
        self._closed = threading.Event()
        self._reconnects = _Reconnects()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        client, broker = make_client(self.options, MQTTProtocolVersion.MQTTv311,
                                     manual_ack=True, clean=False)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        start_client(client, broker, self.options, self._reconnects)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            if client.is_connected():
                # PUBACKs queued from this thread can be cut off by a disconnect() that follows
                # at once (seen: 9 of 10 acks lost). Wait until paho's network thread wrote its
                # queue (a private attribute; test_mqtt_ack pins the behaviour), then for the
                # DISCONNECT to go out after it.
                deadline = time.monotonic() + 2.0
                # paho has no public "outgoing queue empty"; its test guards this use.
                while client._out_packet and time.monotonic() < deadline:  # noqa: ASYNC110, SLF001
                    await asyncio.sleep(0.005)
                self._closed.clear()
                client.disconnect()
                self._closed.wait(5.0)
            client.loop_stop()
        self._connected.clear()

    # -- paho thread -----------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._reconnects.succeeded()
        with self._gen_lock:
            self._generation += 1
        client.subscribe([(topic, 1) for topic in self.filters])
        log.info("connected (MQTT 3.1.1, session present: %s), subscribing to %s",
                 flags.session_present, ", ".join(self.filters))

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Properties | None) -> None:
        refused = fatal_refusals([f for f, r in zip(self.filters, reasons, strict=False)
                                  if r.is_failure])
        if refused:
            log.error("broker refused the subscription to %s (check the ACL)",
                      ", ".join(refused))
            return
        log.info("subscribed to %s", ", ".join(self.filters))
        self._call(self._connected.set)  # ready: the subscription is in place

    def _on_disconnect(self, client: paho.Client, userdata: Any,
                       flags: paho.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        with self._gen_lock:
            self._generation += 1
        self._call(self._connected.clear)
        if client is self._client:
            self._reconnects.failed(client)
            log.warning("disconnected from broker (%s); reconnecting", reason)
        else:
            self._closed.set()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.put_from_thread(Message(msg.topic, bytes(msg.payload), time.time_ns(), msg.mid,
                                     msg.qos, self._generation), self._loop)

    def _call(self, fn: Any) -> None:
        call_in_loop(self._loop, fn)

    # -- asyncio side ----------------------------------------------------------------------
    def ack(self, messages: list[Message]) -> int:
        """Acknowledge, in order, the messages of the current connection; returns how many."""
        client = self._client
        if client is None:
            return 0
        sent = 0
        with self._gen_lock:
            for m in messages:
                if m.qos and m.generation == self._generation:
                    client.ack(m.mid, m.qos)
                    sent += 1
        return sent

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Send a message on this connection (Sparkplug rebirth requests): fire and forget.

        Never raises: when disconnected, or when paho refuses it, the message is logged and
        dropped; whoever asked will ask again (a rebirth is requested again at the next gap).
        """
        client = self._client
        if client is None or not self._connected.is_set():
            log.warning("not connected: dropped the publish to %s", topic)
            return
        try:
            info = client.publish(topic, payload, qos=qos)
        except (ValueError, OSError) as exc:  # a topic or payload paho will not send
            log.warning("publish to %s refused: %s", topic, exc)
            return
        if info.rc != paho.MQTT_ERR_SUCCESS:
            log.warning("publish to %s dropped: %s", topic, paho.error_string(info.rc))


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


class Publisher(ConnectionState):
    """A QoS-1 publisher whose `publish` resolves when the broker acknowledged the message.

    A clean session: what was not acknowledged when the connection dropped fails (the
    caller keeps it in its spool and sends it again; the store makes the repeat harmless).
    `on_connect` callbacks run in the event loop after each (re)connection.
    """

    def __init__(self, options: MqttOptions, will: Will | None = None,
                 on_connect: Any = None) -> None:
        self.options = options
        self._will = will
        self._on_connect_cb = on_connect
        self._pending: dict[int, asyncio.Future[None]] = {}  # touched in the loop only
        self._connected = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: paho.Client | None = None
        self._reconnects = _Reconnects()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        client, broker = make_client(self.options, MQTTProtocolVersion.MQTTv311,
                                     manual_ack=False, clean=True)
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        if self._will is not None:
            client.will_set(self._will.topic, self._will.payload, qos=1,
                            retain=self._will.retain)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client
        start_client(client, broker, self.options, self._reconnects)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._fail_pending("publisher closed")

    async def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Publish with QoS 1; return once acknowledged, raise ConnectionError otherwise."""
        client = self._client
        if client is None or not self._connected.is_set():
            raise ConnectionError("not connected to the broker")
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        info = client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise ConnectionError(f"publish refused: {paho.error_string(info.rc)}")
        # Registered before this coroutine yields, so before `_acked` can run for this mid.
        self._pending[info.mid] = future
        await future

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        self._reconnects.succeeded()
        log.info("connected to the upstream broker")
        self._call(self._connected.set)
        if self._on_connect_cb is not None:
            self._call(self._on_connect_cb)

    def _on_disconnect(self, client: paho.Client, userdata: Any,
                       flags: paho.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        self._call(self._connected.clear)
        if client is self._client:
            self._reconnects.failed(client)
            log.warning("upstream broker lost (%s); spooling until it is back", reason)
        self._call(lambda: self._fail_pending(f"connection lost ({reason})"))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        # paho calls this holding its own message lock: hand over to the loop, take no lock.
        self._call(lambda: self._acked(mid))

    def _acked(self, mid: int) -> None:
        future = self._pending.pop(mid, None)
        if future is not None and not future.done():
            future.set_result(None)

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError(why))

    def _call(self, fn: Any) -> None:
        call_in_loop(self._loop, fn)
