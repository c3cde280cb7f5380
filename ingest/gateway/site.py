"""The site listener: an embedded broker for the gateway's own sensors.

It binds loopback unless configured for the site network (`gateway_listen_host`), where a
password file (`gateway_listen_password_file`) keeps anonymous publishers out.

Local sensors publish `{device}/{channel}` to it (the gateway adds the pilot and gateway
ids); each message is stamped with device time when it has none and handed to the agent,
which spools it before it is acknowledged to the site broker. Messages on other topics are
logged and acknowledged: they can never become valid.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson

from ingest import topics
from ingest.gateway.broker import embedded_broker
from ingest.mqtt import MqttOptions, Subscriber

log = logging.getLogger(__name__)

Uplink = tuple[str, str, bytes]  # a device's message: device, channel, payload (JSON)
_CHANNELS = frozenset(c.value for c in topics.Channel)


def stamp(payload: bytes, now_ms: int) -> bytes:
    """Add `ts` (now) to every element without one: the agent always stamps, so that a
    redelivered message stays idempotent. Unparseable payloads pass untouched (the collector
    dead-letters them with the reason)."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return payload
    items = doc if isinstance(doc, list) else [doc]
    if all(not isinstance(d, dict) or "ts" in d for d in items):
        return payload
    for d in items:
        if isinstance(d, dict) and "ts" not in d:
            d["ts"] = now_ms
    return orjson.dumps(doc)


async def listen(port: int, client_id: str,
                 take: Callable[[list[Uplink]], Awaitable[bool]], *,
                 host: str = "127.0.0.1", password_file: Path | None = None) -> None:
    """Serve the site broker on `host:port` until cancelled (loopback unless told otherwise;
    with `password_file`, Mosquitto's format, no anonymous client); `take` gets each batch of
    valid, stamped readings and must make them durable before it returns True (False: they
    are not, and the batch is not acknowledged)."""
    async with embedded_broker(host, port, password_file) as url:
        # MQTT 3.1.1 at once: amqtt speaks nothing else, and an MQTT 5 CONNECT would hang
        # there until the fallback's timeout (while sensors' messages found no subscriber).
        opts = MqttOptions(url, client_id, protocol="3.1.1")
        async with Subscriber(opts, ["+/+"]) as site:
            while True:
                batch = await site.take(500, 0.05)
                now_ms = time.time_ns() // 1_000_000
                readings = []
                for m in batch:
                    device, _, channel = m.topic.partition("/")
                    if topics.is_id(device) and channel in _CHANNELS:
                        readings.append((device, channel, stamp(m.payload, now_ms)))
                    else:
                        log.warning("site message on %r ignored: use {device}/{channel}",
                                    m.topic)
                if readings and not await take(readings):
                    continue
                site.ack(batch)
