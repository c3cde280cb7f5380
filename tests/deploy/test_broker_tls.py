"""TLS on the shipped listener with the CA of `citypilot gateway ca`: a client that trusts it
gets in, one that does not is refused, and citypilot's own MQTT clients, as production builds
them (the collector's MQTT 5 stream subscriber, its paho 3.1.1 fallback, the gateway agent's
publisher), verify the broker's certificate unless told otherwise, loudly."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ingest.mqtt import MqttOptions, MqttTimeout, Publisher, Subscriber
from tests.collectors import collector, reading
from tests.deploy.brokerclient import Refused, close, connect, publish
from tests.deploy.conftest import Broker
from tests.support import eventually, stored_count


def tls(url: str, broker: Broker, host: str = "127.0.0.1") -> str:
    parts = urlsplit(url)
    return broker.server.gateway_url(parts.username or "", parts.password or "", host=host)


def test_gateway_over_tls_with_the_generated_ca(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    for host in ("127.0.0.1", "localhost"):  # both are in the certificate's names
        client = connect(tls(gateway(prefix, f"gw-{host[:3]}"), broker, host),
                         ca_file=broker.ca_file)
        try:
            topic = f"citypilot/v1/{prefix}/gw-{host[:3]}/aq-1/telemetry"
            assert publish(client, [(topic, reading(1))])[0] < 0x80
        finally:
            close(client)


def test_client_that_does_not_trust_the_ca_is_refused(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    url = tls(gateway(prefix, "gw1"), broker)
    with pytest.raises(Refused, match="CERTIFICATE_VERIFY_FAILED"):
        connect(url)  # the system CAs only
    with pytest.raises(Refused):
        connect(broker.server.gateway_url())  # and no way around it without a password


# citypilot's own subscribers, as the collector builds them: "auto" is the MQTT 5 stream
# subscriber (asyncio streams, the production path), "3.1.1" the paho fallback.
PATHS = {"auto": "5", "3.1.1": "3.1.1"}


async def _receives(sub: Subscriber, gateway_url: str, ca_file: str, topic: str) -> None:
    """A gateway's message arrives on `sub` and is acknowledged: the connection is real."""
    gw = connect(gateway_url, ca_file=ca_file)
    try:
        assert publish(gw, [(topic, reading(1))])[0] < 0x80
    finally:
        close(gw)
    got = await asyncio.wait_for(sub.take(1, 0.05), 10)
    assert [(m.topic, m.payload) for m in got] == [(topic, reading(1))]
    assert sub.ack(got) == 1


@pytest.mark.parametrize("protocol", sorted(PATHS))
async def test_citypilot_subscriber_refuses_an_untrusted_certificate(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str, protocol: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Without the CA (the system CAs only) the collector's subscriber never connects: it
    logs the verification failure and keeps retrying."""
    caplog.set_level(logging.WARNING, logger="ingest.mqtt")
    options = MqttOptions(url=broker.collector_url(tls=True), client_id=f"{prefix}-untrusted",
                          protocol=protocol)
    async with Subscriber(options, [f"citypilot/v1/{prefix}/#"]) as sub:
        await eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, timeout=15)
        assert not sub.connected
        with pytest.raises(MqttTimeout, match=r"no connection to mqtts://127\.0\.0\.1"):
            await sub.wait_connected(0.5)


@pytest.mark.parametrize("protocol", sorted(PATHS))
async def test_citypilot_subscriber_connects_with_the_trusted_ca(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str,
        protocol: str) -> None:
    gateway_url = tls(gateway(prefix, "gw1"), broker)
    options = MqttOptions(url=broker.collector_url(tls=True), client_id=f"{prefix}-trusted",
                          ca_file=broker.ca_file, protocol=protocol)
    async with Subscriber(options, [f"citypilot/v1/{prefix}/#"]) as sub:
        await sub.wait_connected(15)
        assert sub.protocol == PATHS[protocol]
        await _receives(sub, gateway_url, broker.ca_file,
                        f"citypilot/v1/{prefix}/gw1/aq-1/telemetry")


async def test_insecure_flag_accepts_an_untrusted_certificate_loudly(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="ingest.mqtt")
    gateway_url = tls(gateway(prefix, "gw1"), broker)
    options = MqttOptions(url=broker.collector_url(tls=True), client_id=f"{prefix}-insecure",
                          tls_insecure=True)
    async with Subscriber(options, [f"citypilot/v1/{prefix}/#"]) as sub:
        await sub.wait_connected(15)
        assert sub.protocol == "5"
        await _receives(sub, gateway_url, broker.ca_file,
                        f"citypilot/v1/{prefix}/gw1/aq-1/telemetry")
    assert "TLS certificate verification is OFF" in caplog.text


async def test_gateway_publisher_verifies_the_broker(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """The gateway agent's publisher (paho) refuses the untrusted certificate, and publishes
    once it trusts the CA."""
    caplog.set_level(logging.WARNING, logger="ingest.mqtt")
    url = tls(gateway(prefix, "gw1"), broker)
    async with Publisher(MqttOptions(url=url, client_id=f"{prefix}-pub-a")) as untrusted:
        await eventually(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, timeout=15)
        assert not untrusted.connected
    async with Publisher(MqttOptions(url=url, client_id=f"{prefix}-pub-b",
                                     ca_file=broker.ca_file)) as trusted:
        await trusted.wait_connected(15)
        await asyncio.wait_for(trusted.publish(
            f"citypilot/v1/{prefix}/gw1/aq-1/telemetry", reading(1)), 10)


async def test_collector_over_tls_with_the_ca_file_setting(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str,
        tmp_path: Path) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    gw = connect(tls(gateway(prefix, "gw1"), broker), ca_file=broker.ca_file)
    async with collector(broker.collector_url(tls=True), store_url, tmp_path / "spool",
                         mqtt_ca_file=broker.ca_file):
        try:
            now = int(time.time() * 1000)
            assert publish(gw, [(f"citypilot/v1/{prefix}/gw1/aq-1/telemetry",
                                 reading(now))]) == [0]
        finally:
            close(gw)

        async def arrived() -> bool:
            return await stored_count(store_url, "air_quality", "pm25", pilot=prefix) == 1
        await eventually(arrived, timeout=15)
