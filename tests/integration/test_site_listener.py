"""The gateway agent's site listener (the embedded broker local sensors publish to), against
a real upstream Mosquitto: it binds loopback unless told otherwise, and with a password file
in Mosquitto's format it refuses anonymous clients and wrong passwords and lets the right
ones publish (their readings reach the central broker)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import orjson
import pytest
from paho.mqtt.enums import MQTTProtocolVersion

from citypilot.settings import Settings
from ingest.gateway import GatewayAgent, GatewayOptions
from ingest.gateway.credentials import set_password
from ingest.mqtt import MqttOptions
from tests.deploy.brokerclient import Refused, close, connect, publish
from tests.mqttclient import Recorder
from tests.servers import Mosquitto, find_binary, free_port
from tests.support import eventually

MQTT311 = MQTTProtocolVersion.MQTTv311
REFUSED = r"Not authorized|Bad user name or password"


@asynccontextmanager
async def agent_listening(broker: Mosquitto, tmp: Path, prefix: str, **site: object
                          ) -> AsyncIterator[int]:
    """A running agent with a site listener; yields its port."""
    port = free_port()
    agent = GatewayAgent(GatewayOptions(
        pilot=prefix, gateway="gw-1", upstream=MqttOptions(broker.url, f"gw-{prefix}"),
        spool_dir=tmp / "gw-spool", heartbeat_s=0.5, listen_port=port, **site), [])  # type: ignore[arg-type]
    run = asyncio.create_task(agent.run())
    await eventually(lambda: asyncio.to_thread(answers, f"mqtt://127.0.0.1:{port}"), timeout=20)
    try:
        yield port
    finally:
        agent.stop()
        await asyncio.wait_for(run, 30)


def answers(url: str) -> bool:
    """The listener answers an MQTT CONNECT there (accepting or refusing it). A real CONNECT,
    not a bare TCP probe: amqtt 0.12 leaves the stream of a connection that never sent one
    unclosed."""
    try:
        close(connect(url, protocol=MQTT311, timeout=2))
    except Refused as exc:
        return not str(exc).startswith("TLS/TCP")
    return True


async def site_publish(url: str, device: str, value: int) -> None:
    """Connect to the site listener (MQTT 3.1.1, amqtt's) and publish one reading at QoS 1."""
    def send() -> None:
        client = connect(url, protocol=MQTT311)
        try:
            doc = {"ts": int(time.time() * 1000), "kind": "noise",
                   "values": {"noise_laeq": value}}
            assert publish(client, [(f"{device}/telemetry", orjson.dumps(doc))]) == [0]
        finally:
            close(client)
    await asyncio.to_thread(send)


def arrived(rec: Recorder, prefix: str, device: str) -> bool:
    return any(t == f"citypilot/v1/{prefix}/gw-1/{device}/telemetry" for t, _ in rec.messages)


async def delivered(url: str, rec: Recorder, prefix: str, device: str) -> None:
    """Publish on the site listener until the reading reaches the central broker: the
    embedded broker drops what arrives before the agent's own subscriber has subscribed
    (it falls back from MQTT 5 to 3.1.1 first, a few seconds)."""
    async def sent() -> bool:
        await site_publish(url, device, 1)
        try:
            await eventually(lambda: arrived(rec, prefix, device), timeout=1)
        except AssertionError:
            return False
        return True
    await eventually(sent, timeout=30)


def test_the_default_address_is_loopback() -> None:
    assert Settings().gateway_listen_host == "127.0.0.1"
    assert GatewayOptions("p", "g", MqttOptions("mqtt://x", "c"), Path(".")).listen_host \
        == "127.0.0.1"


@pytest.mark.parametrize("host", [None, "0.0.0.0"])
async def test_bound_to_loopback_unless_widened(
        make_mosquitto: Callable[..., Mosquitto], prefix: str, tmp_path: Path,
        host: str | None) -> None:
    """127.0.0.2 is this host too, but not the address 127.0.0.1: a loopback-only listener
    refuses it, one on every interface takes it (as it would the site network's)."""
    broker = make_mosquitto()
    rec = Recorder(broker.url, f"citypilot/v1/{prefix}/#", client_id=f"rec-{prefix}")
    site = {} if host is None else {"listen_host": host}
    try:
        async with agent_listening(broker, tmp_path, prefix, **site) as port:
            await delivered(f"mqtt://127.0.0.1:{port}", rec, prefix, "dev-1")  # anonymous
            other = await asyncio.to_thread(answers, f"mqtt://127.0.0.2:{port}")
            assert other is (host == "0.0.0.0")
    finally:
        rec.close()


async def test_password_file_refuses_anonymous_and_wrong_passwords(
        make_mosquitto: Callable[..., Mosquitto], prefix: str, tmp_path: Path) -> None:
    broker = make_mosquitto()
    passwd = tmp_path / "site.passwd"
    # One entry by citypilot's writer of Mosquitto's format, one by Mosquitto's own.
    set_password(passwd, "sensor-a", "right-one")
    await asyncio.to_thread(subprocess.run, [find_binary("mosquitto_passwd", "mosquitto"),
                            "-b", str(passwd), "sensor-b", "also-right"], check=True)
    rec = Recorder(broker.url, f"citypilot/v1/{prefix}/#", client_id=f"rec-{prefix}")
    try:
        async with agent_listening(broker, tmp_path, prefix,
                                   listen_password_file=passwd) as port:
            site = f"127.0.0.1:{port}"
            for url in (f"mqtt://{site}", f"mqtt://sensor-a:wrong@{site}",
                        f"mqtt://sensor-a:@{site}", f"mqtt://nobody:right-one@{site}"):
                with pytest.raises(Refused, match=REFUSED):
                    await asyncio.to_thread(connect, url, protocol=MQTT311)
            await delivered(f"mqtt://sensor-a:right-one@{site}", rec, prefix, "dev-a")
            await delivered(f"mqtt://sensor-b:also-right@{site}", rec, prefix, "dev-b")
            # The file is read at every login: a sensor added while the agent runs gets in.
            set_password(passwd, "sensor-c", "added-later")
            await delivered(f"mqtt://sensor-c:added-later@{site}", rec, prefix, "dev-c")
    finally:
        rec.close()


def test_a_missing_password_file_is_a_configuration_error(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from citypilot.cli import app

    result = CliRunner().invoke(app, [
        "gateway", "--pilot", "p1", "--gateway", "gw1", "--upstream", "mqtt://127.0.0.1:1",
        "--listen", str(free_port()), "--listen-password-file", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "gateway_listen_password_file" in result.stderr and "mosquitto_passwd" in \
        result.stderr
