"""TLS on the shipped listener with the CA of `citypilot gateway ca`: a client that trusts it
gets in, one that does not is refused, and citypilot's own MQTT client (collector and gateway
agent) verifies the broker's certificate unless told otherwise, loudly."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from ingest.mqtt import MqttOptions, make_client
from tests.collectors import collector, reading
from tests.deploy.brokerclient import Refused, close, connect, connect_or_error, publish
from tests.deploy.conftest import Broker
from tests.support import eventually, stored_count


def tls(url: str, broker: Broker, host: str = "127.0.0.1") -> str:
    parts = urlsplit(url)
    return broker.server.url(parts.username or "", parts.password or "", tls=True, host=host)


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
        connect(broker.server.url(tls=True))  # and no way around it without a password


def _connect_like_citypilot(options: MqttOptions) -> None:
    client, parsed = make_client(options, MQTTProtocolVersion.MQTTv5, manual_ack=True,
                                 clean=False)
    error = connect_or_error(client, parsed.host, parsed.port)
    if error is not None:
        raise error
    client.disconnect()


def test_citypilot_client_verifies_the_broker_by_default(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    url = tls(gateway(prefix, "gw1"), broker)
    with pytest.raises(ssl.SSLCertVerificationError):
        _connect_like_citypilot(MqttOptions(url=url, client_id=f"{prefix}-a"))
    _connect_like_citypilot(MqttOptions(url=url, client_id=f"{prefix}-b",
                                        ca_file=broker.ca_file))


def test_insecure_flag_is_logged_loudly(broker: Broker, gateway: Callable[[str, str], str],
                                        prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    url = tls(gateway(prefix, "gw1"), broker)
    with caplog.at_level(logging.WARNING, logger="ingest.mqtt"):
        _connect_like_citypilot(MqttOptions(url=url, client_id=f"{prefix}-c",
                                            ca_file=broker.ca_file, tls_insecure=True))
    assert "TLS certificate verification is OFF" in caplog.text


def test_insecure_flag_accepts_an_untrusted_certificate(
        broker: Broker, gateway: Callable[[str, str], str], prefix: str) -> None:
    url = tls(gateway(prefix, "gw1"), broker)
    _connect_like_citypilot(MqttOptions(url=url, client_id=f"{prefix}-d", tls_insecure=True))


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
