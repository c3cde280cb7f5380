"""Publishing to the broker: one paho-mqtt 2.x client, QoS 1, as fast as the broker acks.

Only this module and `batching` (its client) know paho. It speaks MQTT 5 and falls back to
3.1.1 when the broker refuses version 5 (the embedded demo broker speaks only 3.1.1). It keeps
its own window of unacknowledged publishes, at most the broker's Receive Maximum: paho's own
in-flight limit (`max_inflight_messages_set`) makes every PUBACK scan the whole outgoing queue,
so it is set to 0 (no limit) and the window is ours; `max_queued_messages_set` is a hard
backstop at the window's size. A publish is done only when its PUBACK arrives (`on_publish`),
and `drain` waits for the last one, so a run ends with everything in the broker.

The broker URL, its credentials and the TLS context come from `ingest.mqtt.options`, as for
the collector and the gateway agent; reconnects wait its jittered backoff.

The network loop runs in the caller's thread (paho's external-loop API: `loop_read`,
`loop_write`, `loop_misc` around our own `select`), which keeps the publisher free of locks.
For throughput the client is `batching.BatchingClient`: a burst of publishes goes out in one
write, PUBACKs come in in big reads and are decoded without allocating per ack.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt.options import BrokerUrl, client_tls, reconnect_delay_s
from simulators.batching import BatchingClient
from simulators.summary import Expectation, Planned

log = logging.getLogger(__name__)

_UNSUPPORTED_PROTOCOL = 0x84  # CONNACK reason: "Unsupported Protocol Version"
_OK = (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN)  # NO_CONN: sent later
_BURST_SHARE = 2  # publish in bursts of at least 1/2 of the window
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)


class PublishError(RuntimeError):
    """The broker cannot be reached, refused us, or did not acknowledge in time."""


class Cancelled(Exception):
    """The run was cancelled from outside (its cancel event was set)."""


@dataclass(frozen=True, slots=True)
class SimPublisherConfig:
    url: BrokerUrl
    client_id: str
    window: int = 1_000  # publishes in flight, further capped by the broker's Receive Maximum
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 60.0
    reconnect_timeout_s: float = 60.0
    keepalive_s: int = 30
    ca_file: str | None = None  # None: the system CAs verify an mqtts:// broker
    tls_insecure: bool = False


@dataclass(frozen=True, slots=True)
class Pace:
    """When messages are due: `origin_ms` of schedule time is wall time `wall0` (monotonic);
    `stop_at`: a monotonic deadline after which no more messages are taken."""

    origin_ms: int
    wall0: float
    stop_at: float | None = None

    def due_ms(self, now: float) -> float:
        return self.origin_ms + (now - self.wall0) * 1000.0


class SimPublisher:
    """A connected MQTT client that publishes messages at QoS 1 and waits for their acks."""

    def __init__(self, config: SimPublisherConfig, cancel: threading.Event | None = None,
                 heartbeat: Callable[[], None] | None = None) -> None:
        self.config, self.cancel = config, cancel or threading.Event()
        self.heartbeat = heartbeat
        self.protocol = "5"
        self.window = config.window
        self.published = self.acked = self.refused = 0
        self._inflight = 0
        self._connected = False
        self._connack: ReasonCode | None = None
        self._client = self._make(MQTTProtocolVersion.MQTTv5)
        self._misc_at = self._beat_at = 0.0

    # -- connection -----------------------------------------------------------------------
    def _make(self, protocol: MQTTProtocolVersion) -> BatchingClient:
        cfg = self.config
        client = BatchingClient(CallbackAPIVersion.VERSION2, client_id=cfg.client_id,
                                 protocol=protocol)
        client.max_inflight_messages_set(0)  # ours is the window; see the module docstring
        client.max_queued_messages_set(cfg.window + 64)
        if cfg.url.username is not None:
            client.username_pw_set(cfg.url.username, cfg.url.password)
        context = client_tls(cfg.url, cfg.ca_file, cfg.tls_insecure)
        if context is not None:
            client.tls_set_context(context)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        return client

    def connect(self) -> None:
        """Connect with MQTT 5, or with 3.1.1 when the broker refuses version 5."""
        for protocol in (MQTTProtocolVersion.MQTTv5, MQTTProtocolVersion.MQTTv311):
            if protocol is MQTTProtocolVersion.MQTTv311:
                self._client = self._make(protocol)
                self.protocol = "3.1.1"
            try:
                self._client.connect(self.config.url.host, self.config.url.port,
                                     keepalive=self.config.keepalive_s)
            except OSError as exc:
                raise PublishError(f"cannot reach the MQTT broker at {self.config.url}: "
                                   f"{exc}") from None
            reason = self._await_connack()
            if reason is not None and not reason.is_failure:
                log.info("connected to %s with MQTT %s, window %d", self.config.url,
                         self.protocol, self.window)
                return
            if protocol is MQTTProtocolVersion.MQTTv5 and (
                    reason is None or reason.value == _UNSUPPORTED_PROTOCOL):
                log.info("%s refused MQTT 5; falling back to MQTT 3.1.1", self.config.url)
                self._client.disconnect()
                continue
            raise PublishError(f"the MQTT broker at {self.config.url} refused the connection: "
                               f"{reason or 'closed before CONNACK'}")

    def _await_connack(self) -> ReasonCode | None:
        """The CONNACK's reason, or None if the broker closed the connection first."""
        self._connack = None
        deadline = time.monotonic() + self.config.connect_timeout_s
        while self._connack is None:
            self._check_cancel()
            if time.monotonic() > deadline:
                raise PublishError(f"no CONNACK from {self.config.url} within "
                                   f"{self.config.connect_timeout_s:g} s")
            if not self._io(0.1):
                return None
        return self._connack

    def _reconnect(self) -> None:
        deadline = time.monotonic() + self.config.reconnect_timeout_s
        attempt = 0
        while True:
            self._check_cancel()
            try:
                self._client.reconnect()
                reason = self._await_connack()
                if reason is not None and not reason.is_failure:
                    log.info("reconnected to %s; %d publishes in flight are re-sent",
                             self.config.url, self._inflight)
                    return
                log.warning("reconnecting to %s: %s", self.config.url, reason or "closed")
            except OSError as exc:
                log.warning("reconnecting to %s: %s", self.config.url, exc)
            delay = reconnect_delay_s(attempt, random.random(), base_s=0.4, cap_s=5.0)
            attempt += 1
            if time.monotonic() + delay > deadline:
                raise PublishError(f"lost the MQTT broker at {self.config.url} and could not "
                                   f"reconnect within {self.config.reconnect_timeout_s:g} s")
            if self.cancel.wait(delay):
                raise Cancelled

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: mqtt.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        self._connack = reason
        self._connected = not reason.is_failure
        receive_max = getattr(properties, "ReceiveMaximum", None) if properties else None
        self.window = min(self.config.window, receive_max or self.config.window)

    def _on_disconnect(self, client: mqtt.Client, userdata: object,
                       flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        if self._connected:
            log.warning("disconnected from %s: %s", self.config.url, reason)
        self._connected = False

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self._inflight -= 1
        self.acked += 1
        if reason.is_failure:  # MQTT 5: e.g. "Not authorized" from the broker's ACL
            self.refused += 1

    # -- the loop -------------------------------------------------------------------------
    def _io(self, timeout: float) -> bool:
        """One round of network I/O; False when the connection is gone."""
        client = self._client
        sock = client.socket()
        if sock is None:
            return False
        if client.buffered_input() or getattr(sock, "pending", lambda: 0)():
            readable, writable = True, client.want_write()
        else:
            r, w, _ = select.select([sock], [sock] if client.want_write() else [], [], timeout)
            readable, writable = bool(r), bool(w)
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        if readable:
            rc = client.loop_read()
            if _QUICKACK is not None and isinstance(sock, socket.socket):
                # Ack the broker's segments at once: brokers with Nagle on (Mosquitto's
                # default) hold the next PUBACKs until our ACK, which Linux would delay.
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and writable:
            rc = client.loop_write()
        now = time.monotonic()
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and now >= self._misc_at:
            rc = client.loop_misc()
            self._misc_at = now + 1.0
        if now >= self._beat_at and self.heartbeat is not None:
            self._beat_at = now + 0.25
            self.heartbeat()
        return rc == MQTTErrorCode.MQTT_ERR_SUCCESS and client.socket() is not None

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled

    def send(self, messages: Iterable[Planned], record: Callable[[Expectation], None],
             pace: Pace | None = None) -> None:
        """Publish `messages` as they fall due (all at once without `pace`), calling `record`
        for each one, suppressed ones included."""
        it = iter(messages)
        nxt = next(it, None)
        client = self._client
        while nxt is not None:
            self._check_cancel()
            now = time.monotonic()
            if pace is not None and pace.stop_at is not None and now >= pace.stop_at:
                return
            due = pace.due_ms(now) if pace is not None else float("inf")
            room = self.window - self._inflight if self._connected else 0
            # Publish in bursts of half a window: one write per burst, one read per batch of
            # acks. Trickling one publish per ack would cost a syscall pair per message.
            if room < max(1, self.window // _BURST_SHARE) and self._inflight:
                room = 0
            if room > 0 and nxt.at_ms <= due:
                client = self._client
                client.batching = True
                try:
                    while room > 0 and nxt is not None and nxt.at_ms <= due:
                        if nxt.expect.send:
                            rc = client.publish(nxt.topic, nxt.payload, 1).rc
                            if rc not in _OK:
                                raise PublishError(f"publish failed: {mqtt.error_string(rc)}")
                            self._inflight += 1
                            self.published += 1
                            room -= 1
                        record(nxt.expect)
                        nxt = next(it, None)
                finally:
                    client.batching = False
                    client.loop_write()
            if nxt is None:
                break
            if room <= 0:
                wait = 0.25  # until acks arrive: select wakes up for them
            else:
                wait = min(0.25, max(0.0, (nxt.at_ms - due) / 1000.0))
            if not self._io(wait):
                self._reconnect()

    def drain(self) -> None:
        """Wait until the broker has acknowledged every publish."""
        deadline = time.monotonic() + self.config.ack_timeout_s
        while self._inflight > 0:
            self._check_cancel()
            if time.monotonic() > deadline:
                raise PublishError(f"{self._inflight} publishes not acknowledged within "
                                   f"{self.config.ack_timeout_s:g} s")
            if not self._io(0.25):
                self._reconnect()

    @property
    def in_flight(self) -> int:
        return self._inflight

    @property
    def coalesced(self) -> int:
        """Packets written together with others (the batching works when this grows)."""
        return self._client.coalesced

    def close(self) -> None:
        """Disconnect cleanly (a DISCONNECT, so no will fires) and release the socket."""
        client = self._client
        if self._connected:
            self._connected = False
            client.disconnect()
        sock = client.socket()
        if sock is not None:  # not connected, or the DISCONNECT could not be written
            sock.close()

    def __enter__(self) -> SimPublisher:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
