"""The embedded MQTT broker (amqtt: pure Python, no root, no Mosquitto): one recipe for the
zero-setup demo (`citypilot up`, on loopback) and the gateway's site listener (on loopback by
default; on the site network when configured so). MQTT 3.1.1 only, so production traffic goes
to Mosquitto (deploy/). Anonymous, unless a password file is given (`siteauth.py`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

log = logging.getLogger(__name__)

OWN_USER = "citypilot-agent-site"
_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


@asynccontextmanager
async def embedded_broker(host: str, port: int, password_file: Path | None = None
                          ) -> AsyncIterator[str]:
    """A broker listening on `host:port` for the block, yielding the mqtt:// URL a client of
    this process connects with (credentials included when there is a password file); shut
    down on exit (a failing shutdown is logged: it must not hide the block's own outcome).

    amqtt loads here, not at import: `citypilot gateway` without `--listen` never needs it."""
    from amqtt.broker import Broker

    address = "127.0.0.1" if host in _WILDCARDS else (f"[{host}]" if ":" in host else host)
    if password_file is None:
        auth: dict[str, object] = {"amqtt.plugins.authentication.AnonymousAuthPlugin":
                                   {"allow_anonymous": True}}
        url = f"mqtt://{address}:{port}"
    else:
        own = secrets.token_urlsafe(32)
        auth = {"ingest.gateway.siteauth.PasswordFileAuth": {
            "password_file": str(password_file), "own_user": OWN_USER, "own_password": own}}
        url = f"mqtt://{OWN_USER}:{own}@{address}:{port}"
    broker = Broker({"listeners": {"default": {"type": "tcp", "bind": f"{host}:{port}"}},
                     "plugins": auth})
    await broker.start()
    log.info("embedded broker on %s:%d (%s)", host, port,
             f"password file {password_file}" if password_file else "anonymous")
    try:
        yield url
    finally:
        try:
            await broker.shutdown()
        except Exception as exc:  # amqtt's shutdown raises on half-closed sessions
            log.warning("embedded broker on %s:%d: shutdown failed: %s", host, port, exc)
