"""A plain paho publisher and a raw subscriber for tests: what a gateway (or a person with
mosquitto_pub) does, independent of citypilot's own MQTT code."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion


def _client(url: str, client_id: str, *, v5: bool = False, clean: bool = True) -> paho.Client:
    parts = urlsplit(url)
    proto = MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=None if v5 else clean, protocol=proto)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=30)
    return c


def publish(url: str, messages: Iterable[tuple[str, bytes]], *, client_id: str = "",
            timeout: float = 60.0) -> int:
    """Publish with QoS 1 and return once the broker acknowledged every message."""
    c = _client(url, client_id or f"pub-{time.monotonic_ns()}")
    c.loop_start()
    try:
        infos = [c.publish(topic, payload, qos=1) for topic, payload in messages]
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            assert info.is_published(), "broker did not acknowledge a publish in time"
        return len(infos)
    finally:
        c.disconnect()
        c.loop_stop()


class PahoPublisher:
    """A long-lived QoS-1 publisher with a persistent session, for outage tests: it keeps
    what the broker has not acknowledged and resends it after a reconnect."""

    def __init__(self, url: str, client_id: str) -> None:
        self.client = _client(url, client_id, clean=False)
        self.client.reconnect_delay_set(0.2, 2)
        self.acked: set[int] = set()
        self.client.on_publish = lambda c, ud, mid, rc, props: self.acked.add(mid)
        self.client.loop_start()
        self.infos: list[paho.MQTTMessageInfo] = []

    def send(self, topic: str, payload: bytes) -> None:
        self.infos.append(self.client.publish(topic, payload, qos=1))

    def wait_all(self, timeout: float = 60.0) -> None:
        # Not wait_for_publish(): it raises at once for a message queued while disconnected,
        # which paho still sends after the reconnect; count PUBACKs instead.
        deadline = time.monotonic() + timeout
        mids = {info.mid for info in self.infos}
        while not mids <= self.acked:
            assert time.monotonic() < deadline, f"{len(mids - self.acked)} publishes unacked"
            time.sleep(0.01)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Recorder:
    """Subscribes (auto-ack, at `qos`) and records every message it sees, and the QoS each
    arrived with (`qos_seen`)."""

    def __init__(self, url: str, topic: str, *, client_id: str = "",
                 clean: bool = True, qos: int = 1) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.qos_seen: list[int] = []
        self._lock = threading.Lock()
        self.client = _client(url, client_id or f"rec-{time.monotonic_ns()}", clean=clean)
        self.client.reconnect_delay_set(0.2, 2)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe(topic, qos=qos)
        self.client.loop_start()
        assert subscribed.wait(10), f"no SUBACK for {topic}"

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload)))
            self.qos_seen.append(msg.qos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
