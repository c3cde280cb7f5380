"""The embedded MQTT broker (amqtt: pure Python, no root, no Mosquitto): one recipe for the
zero-setup demo (`citypilot up`, on loopback) and the gateway's site listener (on the site
network). Anonymous and MQTT 3.1.1 only, so production traffic goes to Mosquitto (deploy/).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

log = logging.getLogger(__name__)


@asynccontextmanager
async def embedded_broker(host: str, port: int) -> AsyncIterator[Any]:
    """An anonymous broker listening on `host:port` for the block; shut down on exit (a
    failing shutdown is logged: it must not hide the block's own outcome).

    amqtt loads here, not at import: `citypilot gateway` without `--listen` never needs it."""
    from amqtt.broker import Broker

    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                    {"allow_anonymous": True}},
    })
    await broker.start()
    try:
        yield broker
    finally:
        try:
            await broker.shutdown()
        except Exception as exc:  # amqtt's shutdown raises on half-closed sessions
            log.warning("embedded broker on %s:%d: shutdown failed: %s", host, port, exc)
