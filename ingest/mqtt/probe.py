"""A look at a broker from outside, for `citypilot doctor`: what its `$SYS` tree tells and
what a probe can establish.

Mosquitto 2.0.11 publishes, retained, its version and uptime, and the count of messages it
dropped (`drops.py`: retained for 60 s after each change, so a count that did not change in
the last minute is unknown to a new subscriber). Nothing in `$SYS` says what
`max_queued_messages`, `max_queued_bytes` or `persistence` are set to. The probe measures
the first: a persistent session (MQTT 5, Session Expiry) subscribes to a private topic
below `citypilot/doctor/`, disconnects, another client publishes `messages` QoS-1 messages
there, and the session comes back and counts what the broker kept for it. A broker that
keeps all of them has no count limit at or below `messages` (one above cannot be seen
without queueing more); one that keeps fewer has a limit (the stock 1,000). A marker
published once the session is back, and delivered after everything queued before it, says
when the count is complete. Whether queues survive a broker restart (`persistence`) cannot
be seen without restarting the broker, so the probe does not tell it.

The probe needs an account that may read and write `citypilot/doctor/#`; a refusal is a
fact here (`refused`), never an exception. paho-mqtt runs in its own thread: the caller
runs `look` through `asyncio.to_thread`.
"""

from __future__ import annotations

import secrets
import ssl
import threading
import time
from dataclasses import dataclass, replace
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ingest.mqtt.drops import DROPPED_TOPIC
from ingest.mqtt.options import MqttOptions
from ingest.mqtt.paho import make_client

PROBE_PREFIX = "citypilot/doctor"
VERSION_TOPIC = "$SYS/broker/version"
UPTIME_TOPIC = "$SYS/broker/uptime"
SYS_TOPICS = (DROPPED_TOPIC, VERSION_TOPIC, UPTIME_TOPIC)


@dataclass(frozen=True, slots=True)
class QueueProbe:
    sent: int  # messages published while the session was away
    received: int  # of those, delivered when it came back
    session_kept: bool  # the broker still had the session (and its subscription)


@dataclass(frozen=True, slots=True)
class BrokerFacts:
    broker: str  # the URL without credentials
    error: str | None = None  # no connection: why
    version: str | None = None  # $SYS/broker/version
    uptime: str | None = None  # $SYS/broker/uptime, as published ("88 seconds")
    dropped: int | None = None  # $SYS/broker/publish/messages/dropped; None: not published
    probe: QueueProbe | None = None
    refused: str | None = None  # why the queue probe could not run


class _Failed(Exception):
    """The broker refused or did not answer in time; the message says which."""


class _Client:
    """A paho MQTT 5 client whose callbacks feed events that the probe waits on."""

    def __init__(self, options: MqttOptions, client_id: str) -> None:
        self.client, self.broker = make_client(replace(options, client_id=client_id),
                                               MQTTProtocolVersion.MQTTv5, manual_ack=False,
                                               clean=True)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.lock = threading.Condition()
        self.connack: tuple[ReasonCode, bool] | None = None
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.pubacks: dict[int, ReasonCode] = {}
        self.messages: list[paho.MQTTMessage] = []
        self.disconnected = False
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_disconnect = self._on_disconnect

    def _note(self, fn: Any) -> None:
        with self.lock:
            fn()
            self.lock.notify_all()

    def _on_connect(self, client: paho.Client, userdata: Any, flags: paho.ConnectFlags,
                    reason: ReasonCode, properties: Properties | None) -> None:
        self._note(lambda: setattr(self, "connack", (reason, bool(flags.session_present))))

    def _on_subscribe(self, client: paho.Client, userdata: Any, mid: int,
                      codes: list[ReasonCode], properties: Properties | None) -> None:
        self._note(lambda: self.subacks.__setitem__(mid, list(codes)))

    def _on_publish(self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self._note(lambda: self.pubacks.__setitem__(mid, reason))

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self._note(lambda: self.messages.append(msg))

    def _on_disconnect(self, client: paho.Client, userdata: Any, flags: paho.DisconnectFlags,
                       reason: ReasonCode, properties: Properties | None) -> None:
        self._note(lambda: setattr(self, "disconnected", True))

    def wait(self, done: Any, deadline: float, what: str) -> None:
        with self.lock:
            if not self.lock.wait_for(done, max(0.0, deadline - time.monotonic())):
                raise _Failed(f"{self.broker} did not {what} in time")

    def connect(self, *, clean: bool, expiry_s: int, deadline: float) -> bool:
        """Connect; return whether the broker still had the session."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry_s
        self.connack, self.disconnected = None, False
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=30,
                                clean_start=clean, properties=props)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise _Failed(f"cannot connect to {self.broker}: {exc}") from None
        self.client.loop_start()
        self.wait(lambda: self.connack is not None, deadline, "answer CONNECT")
        assert self.connack is not None
        reason, present = self.connack
        if reason.is_failure:
            raise _Failed(f"{self.broker} refused the connection: {reason}")
        return present

    def subscribe(self, topics: list[str], deadline: float) -> list[ReasonCode]:
        _, mid = self.client.subscribe([(t, 1) for t in topics])
        assert mid is not None
        self.wait(lambda: mid in self.subacks, deadline, "answer SUBSCRIBE")
        return self.subacks[mid]

    def publish(self, topic: str, payload: bytes) -> int:
        info = self.client.publish(topic, payload, qos=1)
        if info.rc != paho.MQTT_ERR_SUCCESS:
            raise _Failed(f"publish to {self.broker} failed: {paho.error_string(info.rc)}")
        return info.mid

    def disconnect(self, *, end_session: bool = False) -> None:
        if self.connack is None or self.connack[0].is_failure:  # never connected
            self.client.loop_stop()
            self.disconnected = True
            return
        props = None
        if end_session:  # MQTT 5: a Session Expiry of 0 on DISCONNECT ends the session
            props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        with self.lock:
            self.lock.wait_for(lambda: self.disconnected, 5.0)
        self.client.loop_stop()


def look(options: MqttOptions, *, messages: int = 2000, timeout_s: float = 15.0) -> BrokerFacts:
    """The broker's `$SYS` facts and, when `messages` > 0, the queue probe (blocking)."""
    deadline = time.monotonic() + timeout_s
    client_id = f"citypilot-doctor-{secrets.token_hex(4)}"
    topic = f"{PROBE_PREFIX}/{client_id}"
    session = _Client(options, client_id)
    facts = BrokerFacts(str(session.broker))
    try:
        session.connect(clean=True, expiry_s=max(60, round(timeout_s * 4)), deadline=deadline)
    except _Failed as exc:
        session.client.loop_stop()
        return replace(facts, error=str(exc))
    try:
        session.subscribe(list(SYS_TOPICS), deadline)
        # Mosquitto handles one SUBSCRIBE after the other: once the second is answered, the
        # retained $SYS messages of the first have all arrived. (Mosquitto 2.0 grants a
        # subscription its ACL forbids and then delivers nothing: a $SYS topic this account
        # may not read is just absent.)
        probe_code = session.subscribe([topic], deadline)[0]
        facts = _sys_facts(facts, session.messages)
        if probe_code.is_failure:
            return replace(facts, refused=f"the broker refused the subscription to {topic} "
                           f"({probe_code})")
        if messages > 0:
            facts = _probe(facts, options, session, client_id, messages, deadline)
        return facts
    except _Failed as exc:
        return replace(facts, refused=str(exc))
    finally:
        if not session.disconnected:
            session.disconnect(end_session=True)


def _sys_facts(facts: BrokerFacts, messages: list[paho.MQTTMessage]) -> BrokerFacts:
    values = {m.topic: m.payload.decode("utf-8", "replace") for m in messages}
    dropped = values.get(DROPPED_TOPIC)
    return replace(facts, version=values.get(VERSION_TOPIC), uptime=values.get(UPTIME_TOPIC),
                   dropped=int(dropped) if dropped is not None and dropped.isdigit() else None)


def _probe(facts: BrokerFacts, options: MqttOptions, session: _Client, client_id: str,
           messages: int, deadline: float) -> BrokerFacts:
    topic = f"{PROBE_PREFIX}/{client_id}"
    publisher = _Client(options, f"{client_id}-pub")
    publisher.connect(clean=True, expiry_s=0, deadline=deadline)
    try:
        # First a marker while the session is here: it proves that this account may both
        # write and read the topic (an ACL that forbids the read delivers nothing, silently).
        try:
            _await_marker(session, publisher, topic, min(deadline, time.monotonic() + 3.0),
                          b"here")
        except _Failed as exc:
            if "refused" in str(exc):
                raise
            return replace(facts, refused=f"the broker does not deliver {topic} to this "
                           "account (its ACL lets it publish there but not read)")
        session.disconnect()  # the session, and its subscription, stay on the broker
        mids = [publisher.publish(topic, str(i).encode()) for i in range(messages)]
        publisher.wait(lambda: all(m in publisher.pubacks for m in mids), deadline,
                       f"acknowledge {messages} publishes")
        refusal = next((publisher.pubacks[m] for m in mids if publisher.pubacks[m].is_failure),
                       None)
        if refusal is not None:
            return replace(facts, refused=f"the broker refused publishing to {topic} "
                           f"({refusal})")
        # A new paho client for the return: one client started twice leaks its socket pair.
        back = _Client(options, client_id)
        try:
            kept = back.connect(clean=False, expiry_s=60, deadline=deadline)
            if kept:
                _await_marker(back, publisher, topic, deadline, b"back")
        finally:
            back.disconnect(end_session=True)
        got = {m.payload for m in back.messages if m.payload.isdigit()}
        return replace(facts, probe=QueueProbe(messages, len(got), kept))
    finally:
        publisher.disconnect()


def _await_marker(session: _Client, publisher: _Client, topic: str, deadline: float,
                  marker: bytes) -> None:
    """Publish `marker` (again every 0.5 s: a full queue drops it too) until it arrives,
    which is after everything the broker had queued for the session before it."""
    while True:
        mid = publisher.publish(topic, marker)
        try:
            session.wait(lambda: any(m.payload == marker for m in session.messages),
                         min(deadline, time.monotonic() + 0.5), "deliver")
            return
        except _Failed:
            refusal = publisher.pubacks.get(mid)
            if refusal is not None and refusal.is_failure:
                raise _Failed(f"the broker refused publishing to {topic} ({refusal})") from None
            if time.monotonic() >= deadline:
                raise
