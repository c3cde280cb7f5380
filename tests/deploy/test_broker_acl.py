"""The shipped Mosquitto configuration with `citypilot gateway add` credentials: a gateway
writes only below its own pilot/gateway (the message never reaches the collector); a wrong
password, an anonymous client and a revoked gateway are refused."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ingest.gateway.credentials import revoke_gateway
from tests.collectors import collector, reading
from tests.deploy.brokerclient import Refused, close, connect, publish
from tests.deploy.conftest import Broker, can_log_in
from tests.support import eventually, stored_count, wait_until

NOT_AUTHORIZED = 0x87


def topic(pilot: str, gw: str, device: str = "aq-1") -> str:
    return f"citypilot/v1/{pilot}/{gw}/{device}/telemetry"


async def stored(store_url: str, pilot: str, gateway: str | None = None) -> int:
    tags = {"pilot": pilot} if gateway is None else {"pilot": pilot, "gateway": gateway}
    return await stored_count(store_url, "air_quality", "pm25", **tags)


async def test_gateway_publishes_only_below_its_own_pilot_and_gateway(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str,
        tmp_path: Path) -> None:
    other_pilot, store_url = f"{prefix}x", f"sqlite:///{tmp_path / 'store.db'}"
    mine = gateway(prefix, "gw1")
    gateway(prefix, "gw2")
    gateway(other_pilot, "gw1")  # the same gateway id under another pilot: another identity
    now = int(time.time() * 1000)
    async with collector(broker.collector_url(), store_url, tmp_path / "spool"):
        client = connect(mine, ca_file=broker.ca_file)
        try:
            codes = await asyncio.to_thread(publish, client, [
                (topic(prefix, "gw2"), reading(now, 1)),       # another gateway's topic
                (topic(other_pilot, "gw1"), reading(now, 2)),  # another pilot's gw1
                ("citypilot/v1/elsewhere", reading(now, 3)),   # below no gateway at all
                (topic(prefix, "gw1"), reading(now, 4)),       # its own device
                (topic(prefix, "gw1", "aq-2"), reading(now, 5)),
            ])
        finally:
            close(client)
        assert codes == [NOT_AUTHORIZED] * 3 + [0, 0]

        async def own_arrived() -> bool:
            return await stored(store_url, prefix, "gw1") == 2
        await eventually(own_arrived, timeout=15)
    # The refused messages went first on one connection: had the broker routed any of them,
    # the collector would have stored it before the accepted ones.
    assert await stored(store_url, prefix) == 2
    assert await stored(store_url, other_pilot) == 0


def test_gateway_cannot_read_and_collector_cannot_write(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    col = connect(broker.collector_url())
    gw = connect(gateway(prefix, "gw1"), ca_file=broker.ca_file)
    try:
        now = int(time.time() * 1000)
        assert publish(col, [(topic(prefix, "gw1"), reading(now))]) == [NOT_AUTHORIZED]
        # ... but it may ask a Sparkplug B edge node for a rebirth (0x10: no subscriber).
        assert publish(col, [("spBv1.0/g1/NCMD/node1", b"rebirth")])[0] < 0x80
        seen: dict[str, list[str]] = {"collector": [], "gateway": []}
        col.on_message = lambda c, ud, msg: seen["collector"].append(msg.topic)
        gw.on_message = lambda c, ud, msg: seen["gateway"].append(msg.topic)
        col.subscribe(f"citypilot/v1/{prefix}/#", qos=1)
        gw.subscribe(f"citypilot/v1/{prefix}/#", qos=1)
        wait_until(lambda: publish(gw, [(topic(prefix, "gw1"), reading(now))]) == [0]
                   and seen["collector"], timeout=10)
        # The broker delivers to every subscriber as the message arrives: the collector's
        # copy came, the gateway's never does (no read rights).
        assert seen["gateway"] == []
    finally:
        close(gw)
        close(col)


def test_wrong_password_and_anonymous_are_refused(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    url = gateway(prefix, "gw1")
    parts = urlsplit(url)
    with pytest.raises(Refused, match=r"Not authorized|Bad user name or password"):
        connect(url.replace(f":{parts.password}@", ":wrong-password@"),
                ca_file=broker.ca_file)
    for anonymous in (broker.server.url(), broker.server.gateway_url()):
        with pytest.raises(Refused, match="Not authorized"):
            connect(anonymous, ca_file=broker.ca_file)
    with pytest.raises(Refused):
        connect(broker.server.gateway_url(f"{prefix}.gw1", ""), ca_file=broker.ca_file)


def test_revoked_gateway_is_refused_after_the_broker_reloads(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    url = gateway(prefix, "gw1")
    keep = gateway(prefix, "gw2")
    assert revoke_gateway(broker.passwd, broker.acl, prefix, "gw1")
    broker.server.reload()
    wait_until(lambda: not can_log_in(url, broker.ca_file), timeout=10)
    assert can_log_in(keep, broker.ca_file), "revoking one gateway must not touch the others"
    with pytest.raises(Refused, match=r"Not authorized|Bad user name or password"):
        connect(url, ca_file=broker.ca_file)



def test_a_gateway_cannot_disconnect_a_collector_or_another_gateway_by_its_client_id(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    """Mosquitto disconnects a client when another connects with its client id. On the
    gateways' listener the client id is the username, and no gateway password opens the
    collectors' listeners: a gateway that knows a collector's (or another gateway's) client
    id takes over nothing."""
    col_id, gw2_url = f"{prefix}-collector", gateway(prefix, "gw2")
    gone: dict[str, list[int]] = {"collector": [], "gw2": []}
    col = connect(broker.collector_url(), client_id=col_id)
    gw2 = connect(gw2_url, ca_file=broker.ca_file)
    col.on_disconnect = lambda c, ud, flags, rc, props: gone["collector"].append(rc.value)
    gw2.on_disconnect = lambda c, ud, flags, rc, props: gone["gw2"].append(rc.value)
    seen: list[str] = []
    col.on_message = lambda c, ud, msg: seen.append(msg.topic)
    col.subscribe(f"citypilot/v1/{prefix}/#", qos=1)
    gw1_url = gateway(prefix, "gw1")
    user, password = urlsplit(gw1_url).username or "", urlsplit(gw1_url).password or ""
    try:
        # The collectors' listeners (plain and TLS) do not know the gateway's password.
        for url in (broker.server.url(user, password), broker.server.url(user, password,
                                                                          tls=True)):
            with pytest.raises(Refused, match=r"Not authorized|Bad user name or password"):
                connect(url, ca_file=broker.ca_file, client_id=col_id)
        # The gateways' listener lets it in, under its username whatever id it sends.
        now = int(time.time() * 1000)
        for victim in (col_id, f"{prefix}.gw2"):
            intruder = connect(gw1_url, ca_file=broker.ca_file, client_id=victim)
            try:
                assert publish(intruder, [(topic(prefix, "gw1"), reading(now))]) == [0]
            finally:
                close(intruder)
        # The collector still receives (both messages, on its first connection) and gw2
        # still publishes: neither was disconnected.
        wait_until(lambda: len(seen) == 2, timeout=10)
        assert publish(gw2, [(topic(prefix, "gw2"), reading(now))]) == [0]
        wait_until(lambda: len(seen) == 3, timeout=10)
        assert gone == {"collector": [], "gw2": []}
        # What was prevented, and that this test sees it: the same client id on the
        # collectors' listener, by the collectors' account, does take the collector over
        # (Mosquitto 2.0.11 closes the old connection, without a DISCONNECT packet).
        twin = connect(broker.collector_url(), client_id=col_id)
        wait_until(lambda: gone["collector"] != [], timeout=10)
        close(twin)
    finally:
        close(gw2)
        close(col)
