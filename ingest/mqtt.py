"""MQTT for citypilot: URLs and options, the collector's manual-ack `Subscriber`, and the
gateway's `Publisher`. This module and `ingest/mqtt_stream.py` are the only ones that know an
MQTT library.

Acknowledging a QoS-1 message only once it is durable needs manual acks, which aiomqtt 2.x does
not expose (its issue #345). `Subscriber` speaks MQTT 5 through `mqtt_stream` (asyncio streams
and the `mqtt5` codec: a Receive Maximum sized to the batch lets the broker keep a batch's
worth unacknowledged, where an MQTT 3.1.1 subscriber gets Mosquitto's default 20; a Session
Expiry Interval > 0 keeps the session and its queue across restarts). A broker that refuses
MQTT 5 (the demo's embedded one) gets MQTT 3.1.1 through paho-mqtt 2.x (`manual_ack=True`,
`ack(mid, qos)`; its network loop runs in its own thread and messages cross into asyncio
through a deque). tests/integration/test_mqtt_ack.py holds messages unacknowledged and
reconnects, on both paths, so a library upgrade that breaks manual acks fails a test.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

if TYPE_CHECKING:
    from ingest.mqtt_stream import StreamSubscriber

log = logging.getLogger(__name__)


class MqttConfigError(ValueError):
    """The MQTT URL or options are wrong; the message names the fault."""


@dataclass(frozen=True, slots=True)
class Broker:
    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_url(url: str) -> Broker:
    """`mqtt://user:pass@host:1883` or `mqtts://...`; user and password are percent-decoded."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise MqttConfigError(f"MQTT URL {_redact(url)!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise MqttConfigError(f"MQTT URL {_redact(url)!r} has no host")
    try:
        port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
    except ValueError:
        raise MqttConfigError(f"MQTT URL {_redact(url)!r} has an invalid port") from None
    user = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    return Broker(parts.hostname, port, parts.scheme == "mqtts", user, password)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


@dataclass(frozen=True, slots=True)
class MqttOptions:
    url: str
    client_id: str
    session_expiry_s: float = 86400.0
    receive_maximum: int = 10_000
    keepalive_s: int = 30
    ca_file: str | None = None
    tls_insecure: bool = False
    connect_timeout_s: float = 10.0
    protocol: str = "auto"  # "auto": MQTT 5, else 3.1.1 when refused; or "5", "3.1.1"


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    received_ns: int
    mid: int
    qos: int
    generation: int


class MqttTimeout(TimeoutError):
    pass


def make_client(options: MqttOptions, protocol: MQTTProtocolVersion, *,
                manual_ack: bool, clean: bool) -> tuple[paho.Client, Broker]:
    """A configured paho client (credentials, TLS) that is not yet connected."""
    broker = parse_url(options.url)
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=options.client_id,
                         clean_session=None if v5 else clean, protocol=protocol,
                         manual_ack=manual_ack)
    if broker.username is not None:
        client.username_pw_set(broker.username, broker.password)
    if broker.tls:
        insecure = options.tls_insecure
        client.tls_set(ca_certs=options.ca_file,
                       cert_reqs=ssl.CERT_NONE if insecure else ssl.CERT_REQUIRED)
        if insecure:
            log.warning("TLS certificate verification is OFF for %s: anyone on the path can "
                        "read and forge this connection", broker)
            client.tls_insecure_set(True)  # and no hostname check either
    elif broker.username is not None:
        log.warning("credentials for %s travel in clear text (mqtt://); use mqtts://", broker)
    client.reconnect_delay_set(min_delay=1, max_delay=15)
    return client, broker


def topic_matches(pattern: str, topic: str) -> bool:
    """Whether `topic` falls under the subscription filter `pattern` (`+`, `#`)."""
    return bool(paho.topic_matches_sub(pattern, topic))


def call_in_loop(loop: asyncio.AbstractEventLoop | None, fn: Any) -> None:
    """Hand `fn` from paho's network thread to the event loop (dropped once it is closed)."""
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(fn)


def start_client(client: paho.Client, broker: Broker, options: MqttOptions) -> None:
    """Connect in paho's own network thread, which also reconnects with backoff."""
    client.connect_async(broker.host, broker.port, keepalive=options.keepalive_s)
    client.loop_start()
    log.info("connecting to %s as %r (MQTT 3.1.1)", broker, options.client_id)


class Inbox:
    """Received messages waiting for the collector, in arrival order, with the batch-taking
    side both subscribers share. `put` runs in the event loop; paho's network thread uses
    `put_from_thread`, which wakes the loop only when a `take` is waiting for a first message
    (a cross-thread wake-up per message would cost more than the message)."""

    def __init__(self) -> None:
        self._queue: deque[Message] = deque()
        self._bytes = 0  # payload bytes queued, for the byte bound of a batch
        self._wake = asyncio.Event()
        self._armed = False
        self._interrupted = False

    def put(self, msg: Message) -> None:
        self._queue.append(msg)
        self._bytes += len(msg.payload)
        if self._armed:
            self._armed = False
            self._wake.set()

    def put_from_thread(self, msg: Message, loop: asyncio.AbstractEventLoop | None) -> None:
        self._queue.append(msg)
        self._bytes += len(msg.payload)  # a racy tally is fine: it only sizes batches
        if self._armed:
            self._armed = False
            call_in_loop(loop, self._wake.set)

    async def take(self, max_messages: int, max_wait_s: float,
                   max_bytes: int = 1 << 62) -> list[Message]:
        """Wait for at least one message, then up to `max_wait_s` for a full batch (by count
        or by payload bytes); empty-handed after `interrupt()`."""
        while not self._queue:
            if self._interrupted:
                return []
            self._armed = True
            if self._queue:
                break
            await self._wake.wait()
            self._wake.clear()
        deadline = time.monotonic() + max_wait_s
        # Polling a few ms while a batch fills is cheaper than a wake-up per message.
        while (len(self._queue) < max_messages and self._bytes < max_bytes  # noqa: ASYNC110
               and time.monotonic() < deadline):
            await asyncio.sleep(min(0.002, max_wait_s))
        return self.take_nowait(max_messages, max_bytes)

    def take_nowait(self, max_messages: int, max_bytes: int = 1 << 62) -> list[Message]:
        """Up to `max_messages` whose payloads stay within `max_bytes` (at least one)."""
        out: list[Message] = []
        size = 0
        queue = self._queue
        while queue and len(out) < max_messages:
            nbytes = len(queue[0].payload)
            if out and size + nbytes > max_bytes:
                break
            size += nbytes
            out.append(queue.popleft())
        self._bytes -= size
        return out

    def interrupt(self) -> None:
        """Make a waiting `take()` return (empty-handed if nothing arrived): shutdown."""
        self._interrupted = True
        self._wake.set()

    @property
    def backlog(self) -> int:
        return len(self._queue)


class PahoSubscriber(Inbox):
    """The MQTT 3.1.1 subscription (paho), for brokers that refuse MQTT 5: the same manual-ack
    interface as `ingest.mqtt_stream.StreamSubscriber`; `Subscriber` picks between them.

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

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        client, broker = make_client(self.options, MQTTProtocolVersion.MQTTv311,
                                     manual_ack=True, clean=False)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._client = client
        start_client(client, broker, self.options)
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
                while client._out_packet and time.monotonic() < deadline:  # noqa: ASYNC110
                    await asyncio.sleep(0.005)
                self._closed.clear()
                client.disconnect()
                self._closed.wait(5.0)
            client.loop_stop()
        self._connected.clear()

    async def wait_connected(self, within_s: float | None = None) -> None:
        limit = within_s or self.options.connect_timeout_s
        try:
            async with asyncio.timeout(limit):
                await self._connected.wait()
        except TimeoutError:
            raise MqttTimeout(f"no connection to {parse_url(self.options.url)} after "
                              f"{limit:g} s") from None

    # -- paho thread -----------------------------------------------------------------------
    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        with self._gen_lock:
            self._generation += 1
        client.subscribe([(topic, 1) for topic in self.filters])
        log.info("connected (MQTT 3.1.1, session present: %s), subscribing to %s",
                 flags.session_present, ", ".join(self.filters))

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      reasons: list[ReasonCode], properties: Properties | None) -> None:
        refused = [f for f, r in zip(self.filters, reasons, strict=False) if r.is_failure]
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


class Subscriber:
    """A QoS-1 subscription acknowledged by the caller: MQTT 5 through the fast stream
    subscriber (`ingest.mqtt_stream`), or MQTT 3.1.1 through paho when the broker refuses
    MQTT 5 (logged). Enter it, then `take()`, `ack()`, `publish()` as on either."""

    def __init__(self, options: MqttOptions, filters: list[str]) -> None:
        self.options, self.filters = options, filters
        self._impl: StreamSubscriber | PahoSubscriber | None = None
        self._interrupted = False
        self._chosen = asyncio.Event()

    async def __aenter__(self) -> Self:
        from ingest.mqtt_stream import ProtocolRefused, StreamSubscriber

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
        limit = within_s or self.options.connect_timeout_s
        started = time.monotonic()
        try:
            async with asyncio.timeout(limit):
                await self._chosen.wait()
        except TimeoutError:
            raise MqttTimeout(f"no connection to {parse_url(self.options.url)} after "
                              f"{limit:g} s") from None
        await self._on.wait_connected(max(0.1, limit - (time.monotonic() - started)))

    async def take(self, max_messages: int, max_wait_s: float,
                   max_bytes: int = 1 << 62) -> list[Message]:
        return await self._on.take(max_messages, max_wait_s, max_bytes)

    def take_nowait(self, max_messages: int, max_bytes: int = 1 << 62) -> list[Message]:
        return self._on.take_nowait(max_messages, max_bytes)

    def ack(self, messages: list[Message]) -> int:
        return self._on.ack(messages)

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


@dataclass(frozen=True, slots=True)
class Will:
    topic: str
    payload: bytes
    retain: bool = True


class Publisher:
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

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

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
        start_client(client, broker, self.options)
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self._fail_pending("publisher closed")

    async def wait_connected(self, within_s: float) -> bool:
        try:
            async with asyncio.timeout(within_s):
                await self._connected.wait()
        except TimeoutError:
            return False
        return True

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
        log.info("connected to the upstream broker")
        self._call(self._connected.set)
        if self._on_connect_cb is not None:
            self._call(self._on_connect_cb)

    def _on_disconnect(self, client: paho.Client, userdata: Any,
                       flags: paho.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        self._call(self._connected.clear)
        if client is self._client:
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
