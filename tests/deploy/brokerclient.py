"""A gateway's-eye MQTT client for the deployment tests: credentials, TLS with a chosen CA,
MQTT 5 so that a refused publish comes back with its reason code. Plain paho, independent of
citypilot's own MQTT module (which the TLS tests check separately)."""

from __future__ import annotations

import gc
import ssl
import threading
import time
import warnings
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode


class Refused(Exception):
    """The broker (or the TLS handshake) refused the connection."""


def connect(url: str, *, ca_file: str | None = None, timeout: float = 10.0,
            client_id: str | None = None,
            protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5) -> paho.Client:
    """A connected, looping client, MQTT 5 unless told otherwise (a fresh client id unless
    given), or Refused with the reason."""
    parts = urlsplit(url)
    client = paho.Client(CallbackAPIVersion.VERSION2,
                         client_id=client_id or f"t-{time.monotonic_ns()}", protocol=protocol)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    if parts.username:
        client.username_pw_set(unquote(parts.username), unquote(parts.password or ""))
    if parts.scheme == "mqtts":
        client.tls_set(ca_certs=ca_file, cert_reqs=ssl.CERT_REQUIRED)
    done = threading.Event()
    outcome: list[ReasonCode] = []

    def on_connect(c: paho.Client, ud: object, flags: object, rc: ReasonCode,
                   props: object) -> None:
        outcome.append(rc)
        done.set()

    client.on_connect = on_connect
    failed = connect_or_error(client, parts.hostname or "127.0.0.1", parts.port or 1883)
    if failed is not None:
        raise Refused(f"TLS/TCP: {failed}")
    client.loop_start()
    if not done.wait(timeout) or outcome[0].is_failure:
        client.disconnect()  # closes the socket, so a refusal leaks nothing
        client.loop_stop()
        raise Refused(str(outcome[0]) if outcome else "no CONNACK")
    return client


def close(client: paho.Client) -> None:
    client.disconnect()
    client.loop_stop()


def publish(client: paho.Client, messages: Iterable[tuple[str, bytes]],
            timeout: float = 30.0) -> list[int]:
    """QoS-1 publishes; the PUBACK reason code of each (0 ok, 0x87 not authorized)."""
    codes: dict[int, int] = {}
    lock = threading.Lock()

    def on_publish(c: paho.Client, ud: object, mid: int, rc: ReasonCode, props: object) -> None:
        with lock:
            codes[mid] = rc.value

    client.on_publish = on_publish
    mids = [client.publish(topic, payload, qos=1).mid for topic, payload in messages]
    deadline = time.monotonic() + timeout
    while True:
        with lock:
            if all(m in codes for m in mids):
                return [codes[m] for m in mids]
        assert time.monotonic() < deadline, "publishes not acknowledged in time"
        time.sleep(0.01)


def connect_or_error(client: paho.Client, host: str, port: int) -> Exception | None:
    """`client.connect`, with a TLS or socket error returned, not raised. paho 2.2 drops
    (without closing) the TLS socket whose handshake failed; it is freed here, with the
    exception, and its ResourceWarning silenced rather than surfacing in some later test."""
    error: Exception | None = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            client.connect(host, port, keepalive=30)
        except (ssl.SSLError, OSError) as exc:
            error = type(exc)(*exc.args)
        gc.collect()
    return error
