"""ingest.mqtt.options: broker URLs, their redaction, the TLS context and the reconnect
backoff, table by table."""

from __future__ import annotations

import ssl

import pytest

from ingest.mqtt.options import (
    BrokerUrl,
    MqttConfigError,
    client_tls,
    parse_broker_url,
    reconnect_delay_s,
    redact_url,
)


@pytest.mark.parametrize(("url", "expected"), [
    ("mqtt://broker", BrokerUrl("broker", 1883, False)),
    ("mqtts://broker", BrokerUrl("broker", 8883, True)),
    ("mqtt://127.0.0.1:1884", BrokerUrl("127.0.0.1", 1884, False)),
    ("mqtts://broker:9883", BrokerUrl("broker", 9883, True)),
    ("mqtt://gw:secret@broker", BrokerUrl("broker", 1883, False, "gw", "secret")),
    ("mqtt://p%40x:s%3Ac%2Fr@broker", BrokerUrl("broker", 1883, False, "p@x", "s:c/r")),
    ("mqtt://gw@broker", BrokerUrl("broker", 1883, False, "gw", None)),
    ("mqtt://gw:@broker", BrokerUrl("broker", 1883, False, "gw", "")),  # an empty password
    ("mqtt://:secret@broker", BrokerUrl("broker", 1883, False, None, None)),  # no user: none
    ("mqtt://[::1]:1883", BrokerUrl("::1", 1883, False)),
])
def test_parse_broker_url(url: str, expected: BrokerUrl) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(("url", "fault"), [
    ("tcp://broker", "must start with mqtt:// or mqtts://"),
    ("http://gw:hunter2@broker", "must start with mqtt:// or mqtts://"),
    ("broker:1883", "must start with mqtt:// or mqtts://"),
    ("mqtt://", "has no host"),
    ("mqtt://gw:hunter2@:1883", "has no host"),
    ("mqtt://broker:port", "has an invalid port"),
    ("mqtt://gw:hunter2@broker:99999", "has an invalid port"),
])
def test_parse_broker_url_names_the_fault_and_hides_the_password(url: str, fault: str) -> None:
    with pytest.raises(MqttConfigError, match=fault) as caught:
        parse_broker_url(url)
    assert "hunter2" not in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("url", "shown"), [
    ("mqtt://gw:hunter2@broker:1883", "mqtt://gw:***@broker:1883"),
    ("mqtts://gw:hunter2@broker", "mqtts://gw:***@broker"),
    ("mqtt://gw@broker", "mqtt://gw@broker"),
    ("mqtt://broker", "mqtt://broker"),
])
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_broker_url_str_never_shows_credentials() -> None:
    assert str(parse_broker_url("mqtts://gw:hunter2@broker")) == "mqtts://broker:8883"


@pytest.mark.parametrize(("attempt", "draw", "delay"), [
    (0, 0.0, 0.25), (0, 0.5, 0.375), (0, 0.999999, 0.5),
    (1, 0.0, 0.5), (1, 1.0, 1.0),
    (2, 0.0, 1.0), (3, 0.0, 2.0), (4, 0.5, 6.0), (5, 0.0, 7.5),
    (5, 1.0, 15.0),   # the cap reached: 0.5 * 2**5 = 16 > 15
    (9, 0.0, 7.5), (9, 1.0, 15.0), (10_000, 0.5, 11.25),  # no overflow for huge attempts
    (-1, 0.0, 0.25),  # clamped to the first attempt
    (0, 2.0, 0.5), (0, -1.0, 0.25),  # a draw outside [0, 1] is clamped
])
def test_reconnect_delay(attempt: int, draw: float, delay: float) -> None:
    assert reconnect_delay_s(attempt, draw) == pytest.approx(delay)


@pytest.mark.parametrize(("base_s", "cap_s", "attempt", "draw", "delay"), [
    (1.0, 15.0, 0, 0.0, 0.5), (1.0, 15.0, 3, 1.0, 8.0), (1.0, 15.0, 4, 1.0, 15.0),
    (0.4, 5.0, 0, 0.0, 0.2), (0.4, 5.0, 4, 1.0, 5.0),
])
def test_reconnect_delay_with_other_bounds(base_s: float, cap_s: float, attempt: int,
                                           draw: float, delay: float) -> None:
    assert reconnect_delay_s(attempt, draw, base_s=base_s, cap_s=cap_s) == pytest.approx(delay)


def test_reconnect_delays_are_jittered_and_grow() -> None:
    """Two collectors losing the broker together come back at different times."""
    assert reconnect_delay_s(3, 0.1) != reconnect_delay_s(3, 0.9)
    ceilings = [reconnect_delay_s(n, 1.0) for n in range(8)]
    assert ceilings == sorted(ceilings)


@pytest.mark.parametrize(("url", "insecure", "verify", "check_hostname"), [
    ("mqtts://broker", False, ssl.CERT_REQUIRED, True),
    ("mqtts://gw:pw@broker", True, ssl.CERT_NONE, False),
])
def test_client_tls(url: str, insecure: bool, verify: ssl.VerifyMode,
                    check_hostname: bool) -> None:
    context = client_tls(parse_broker_url(url), None, insecure)
    assert context is not None
    assert (context.verify_mode, context.check_hostname) == (verify, check_hostname)


def test_client_tls_is_none_for_plain_mqtt_and_warns_about_clear_credentials(
        caplog: pytest.LogCaptureFixture) -> None:
    assert client_tls(parse_broker_url("mqtt://broker")) is None
    assert "clear text" not in caplog.text
    assert client_tls(parse_broker_url("mqtt://gw:pw@broker")) is None
    assert "clear text" in caplog.text


def test_client_tls_reads_the_ca_file() -> None:
    with pytest.raises(FileNotFoundError):
        client_tls(parse_broker_url("mqtts://broker"), "/nonexistent/ca.crt")
