"""`citypilot simulate` against real brokers, checked by a real subscriber.

The subscriber (paho, QoS 1) is subscribed before anything is published; what it receives must
be exactly what the summary says was sent, and, the run being pinned to a start time, exactly
the messages the scenario regenerates for that seed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from typer.testing import CliRunner

from ingest.mqtt.options import parse_broker_url
from simulators import batching
from simulators.cli import app
from simulators.deployment import FleetSpec
from simulators.faults import FaultSpec
from simulators.publisher import PublishError, SimPublisher, SimPublisherConfig
from simulators.runner import SimulateOptions, run, run_async
from simulators.scenario import Scenario
from simulators.summary import Summary
from tests.servers import Mosquitto, ServerProcess, free_port
from tests.support import eventually, wait_until


class Subscriber:
    """A QoS 1 subscriber that keeps every (topic, payload) it receives."""

    def __init__(self, url: str, topic_filter: str,
                 protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5) -> None:
        broker = parse_broker_url(url)
        self.received: Counter[tuple[str, bytes]] = Counter()
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(topic_filter, qos=1)
        assert self._subscribed.wait(10), "no SUBACK"

    def _on_message(self, client: mqtt.Client, userdata: object,
                    message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received[(message.topic, message.payload)] += 1

    def channels(self) -> Counter[str]:
        with self._lock:
            out: Counter[str] = Counter()
            for (topic, _), n in self.received.items():
                out[topic.rsplit("/", 1)[1]] += n
            return out

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber(mosquitto: Mosquitto, prefix: str) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto.url, f"citypilot/v1/{prefix}-01/#")
    yield sub
    sub.close()


def expected_messages(options: SimulateOptions) -> Counter[tuple[str, bytes]]:
    """What the scenario sends for these options: the same seed and start, the same bytes."""
    assert options.start_ms is not None
    scenario = Scenario(FleetSpec(options.pilots, options.gateways, options.devices,
                                  options.seed, options.pilot_prefix), FaultSpec(options.faults))
    start, backfill = options.start_ms, round(options.backfill_s * 1000)
    speedup = scenario.speedup_for(options.rate, start)
    out: Counter[tuple[str, bytes]] = Counter()
    for window in (scenario.window(start - backfill, start),
                   scenario.window(start, start + round(options.duration_s * 1000), speedup)):
        out.update((m.topic, m.payload) for m in window if m.expect.send)
    return out


def test_a_run_delivers_exactly_what_its_summary_counts(
        mosquitto: Mosquitto, prefix: str, subscriber: Subscriber) -> None:
    options = SimulateOptions(pilots=1, gateways=2, devices=7, rate=300, duration_s=2.0,
                              faults=0.2, seed=5, mqtt_url=mosquitto.url, backfill_s=6 * 3600,
                              pilot_prefix=prefix, start_ms=time.time_ns() // 1_000_000)
    summary = run(options)

    assert summary.acked == summary.published > 1_000
    assert not summary.refused and not summary.cancelled
    assert summary.meta["protocol"] == "5"
    assert summary.malformed > 0 and summary.duplicates > 0 and summary.dropped > 0
    wait_until(lambda: subscriber.channels() == summary.messages, timeout=20)
    assert subscriber.received == expected_messages(options)


def test_cli_reads_the_broker_from_the_environment_and_writes_the_summary(
        mosquitto: Mosquitto, prefix: str, subscriber: Subscriber, tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    result = CliRunner().invoke(app, [
        "--pilot-prefix", prefix, "--pilots", "1", "--gateways", "1", "--devices", "14",
        "--rate", "100", "--duration", "1s", "--backfill", "2h", "--faults", "0.1",
        "--seed", "9", "--summary-json", str(target)],
        env={"CITYPILOT_MQTT_URL": mosquitto.url})
    assert result.exit_code == 0, result.output
    summary = json.loads(target.read_text())
    counts = {k: v for part in ("messages", "readings", "events") for k, v in summary[part].items()}
    assert all(isinstance(v, int) for v in counts.values())
    assert isinstance(summary["malformed"], int)
    assert set(summary["messages"]) == {"telemetry", "event", "status"}
    assert summary["acked"] == sum(summary["messages"].values())
    assert summary["phases"]["backfill"] > 0 and summary["phases"]["live"] > 0
    wait_until(lambda: subscriber.channels() == summary["messages"], timeout=20)


async def test_run_async_is_cancellable(mosquitto: Mosquitto, prefix: str,
                                        subscriber: Subscriber) -> None:
    options = SimulateOptions(rate=50, duration_s=600, mqtt_url=mosquitto.url,
                              pilot_prefix=prefix)
    task = asyncio.create_task(run_async(options))
    await eventually(lambda: sum(subscriber.channels().values()) >= 10, timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: all(t.name != "citypilot-simulate"
                                 for t in threading.enumerate()), timeout=5)


def test_publisher_batches_writes_and_takes_the_lean_puback_path(
        mosquitto: Mosquitto, prefix: str) -> None:
    """Guards the paho internals `batching` relies on: fails if an upgrade bypasses them."""
    scenario = Scenario(FleetSpec(1, 2, 14, seed=1, pilot_prefix=prefix))
    start = time.time_ns() // 1_000_000
    config = SimPublisherConfig(parse_broker_url(mosquitto.url), f"{prefix}-bench")
    hits = batching.puback_reason.cache_info().hits
    with SimPublisher(config) as publisher:
        publisher.send(scenario.window(start - 86_400_000, start), lambda e: None)
        publisher.drain()
    assert publisher.acked == publisher.published > 3_000
    assert publisher.coalesced >= publisher.published  # every publish went out in a burst
    assert batching.puback_reason.cache_info().hits - hits >= publisher.published - 10


def test_unreachable_broker_is_an_error_not_a_hang() -> None:
    options = SimulateOptions(mqtt_url=f"mqtt://127.0.0.1:{free_port()}", duration_s=1)
    with pytest.raises(PublishError, match="cannot reach"):
        run(options)


@pytest.fixture
def amqtt_broker(tmp_path: Path) -> Iterator[str]:
    """The embedded demo broker (amqtt) speaks MQTT 3.1.1 only."""
    port = free_port()
    conf = tmp_path / "amqtt.yaml"
    conf.write_text(
        f"listeners:\n  default:\n    type: tcp\n    bind: 127.0.0.1:{port}\n"
        "plugins:\n  amqtt.plugins.authentication.AnonymousAuthPlugin:\n"
        "    allow_anonymous: true\n")

    def ready() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    binary = Path(sys.executable).parent / "amqtt"  # installed with citypilot into its venv
    assert binary.exists(), f"{binary} missing: install citypilot (`make`) into this venv"
    server = ServerProcess("amqtt", [str(binary), "-c", str(conf)], tmp_path, port, ready)
    server.start()
    yield f"mqtt://127.0.0.1:{port}"
    server.kill()


def test_falls_back_to_mqtt_311_when_the_broker_has_no_mqtt_5(amqtt_broker: str,
                                                              prefix: str) -> None:
    sub = Subscriber(amqtt_broker, f"citypilot/v1/{prefix}-01/#", MQTTProtocolVersion.MQTTv311)
    try:
        options = SimulateOptions(gateways=1, devices=7, rate=40, duration_s=1.0,
                                  mqtt_url=amqtt_broker, backfill_s=1800, pilot_prefix=prefix)
        summary = run(options)
        assert summary.meta["protocol"] == "3.1.1"
        assert summary.acked == summary.published > 50
        wait_until(lambda: sub.channels() == summary.messages, timeout=20)
    finally:
        sub.close()


def test_a_broker_restart_is_survived_and_every_publish_acknowledged(
        make_mosquitto: Callable[..., Mosquitto], prefix: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="simulators.publisher")
    broker = make_mosquitto()
    options = SimulateOptions(gateways=4, devices=14, rate=0, duration_s=0.5,
                              backfill_s=3 * 86_400, mqtt_url=broker.url, pilot_prefix=prefix)
    progress: list[int] = []
    outcome: list[Summary] = []
    worker = threading.Thread(target=lambda: outcome.append(
        run(options, progress=lambda p: progress.append(p.acked))))
    worker.start()
    wait_until(lambda: progress and progress[-1] > 2_000, timeout=20)
    at_restart = progress[-1]
    broker.restart()  # same port, same persistence: the publisher reconnects and re-sends
    worker.join(60)
    assert outcome, "the run did not finish"
    summary = outcome[0]
    assert "reconnected" in caplog.text
    assert summary.acked == summary.published > at_restart
    assert summary.phases["backfill"] > 10_000
