"""A Sparkplug B session end to end: an edge node publishes to real Mosquitto, an in-process
collector with a `sparkplug-b` source stores into real InfluxDB, and its rebirth requests are
seen on the broker by a plain paho subscriber, as the edge node would see them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest.decode import sparkplug_b_pb2 as pb
from ingest.decode.sparkplug_payload import parse, rebirth_command
from ingest.mqtt import MqttOptions, Subscriber
from ingest.stores import open_reader
from ingest.stores.base import Aggregate, Stat
from tests.collectors import collector
from tests.mqttclient import Recorder, publish
from tests.servers import Mosquitto
from tests.support import eventually

PAYLOAD: Any = pb.Payload  # type: ignore[attr-defined]
INT64, FLOAT, DOUBLE, BOOLEAN = 4, 9, 10, 11


def payload(*metrics: dict[str, Any], seq: int | None = None, ts: int | None = None) -> bytes:
    message = PAYLOAD(timestamp=ts) if ts is not None else PAYLOAD()
    if seq is not None:
        message.seq = seq
    for spec in metrics:
        metric = message.metrics.add()
        for key, value in spec.items():
            setattr(metric, key, value)
    data: bytes = message.SerializeToString()
    return data


async def test_sparkplug_session(mosquitto: Mosquitto, influx_url: str, prefix: str,
                                 tmp_path: Path) -> None:
    group, node = prefix, f"spBv1.0/{prefix}/%s/plc-1"
    now = int(time.time() * 1000)
    source = {"name": "plant", "format": "sparkplug-b", "topic": "spBv1.0/#", "pilot": prefix}
    commands = Recorder(mosquitto.url, "spBv1.0/+/NCMD/+")
    try:
        # The recorder's SUBACK is not observable: wait until it sees a message of its own.
        probe = f"spBv1.0/{group}-probe/NCMD/x"
        await asyncio.to_thread(publish, mosquitto.url, [(probe, b"")])
        await eventually(lambda: any(t == probe for t, _ in commands.messages))
        async with collector(mosquitto.url, influx_url, tmp_path / "spool", sources=[source]):
            birth = payload(
                {"name": "bdSeq", "datatype": INT64, "long_value": 7},
                {"name": "Node Control/Rebirth", "alias": 0, "datatype": BOOLEAN,
                 "boolean_value": False},
                {"name": "Inputs/Temperature", "alias": 1, "datatype": FLOAT,
                 "float_value": 20.5},
                {"name": "Inputs/Humidity", "alias": 2, "datatype": DOUBLE,
                 "double_value": 40.0},
                seq=0, ts=now - 10_000)
            await asyncio.to_thread(publish, mosquitto.url, [
                (f"spBv1.0/{group}/NDATA/plc-2", payload({"alias": 1, "float_value": 1.0},
                                                         seq=3, ts=now - 10_000)),
                (node % "NBIRTH", birth),
                (node % "NDATA", payload({"alias": 1, "float_value": 21.5}, seq=1,
                                         ts=now - 9_000)),
                (node % "NDATA", payload({"alias": 2, "double_value": 42.0}, seq=5,
                                         ts=now - 8_000)),  # seq 2-4 lost
            ])
            await eventually(lambda: _asked(commands, f"spBv1.0/{group}/NCMD/plc-1"))
            await eventually(lambda: _asked(commands, f"spBv1.0/{group}/NCMD/plc-2"))
            await eventually(lambda: _stored(influx_url, prefix, "temperature", [
                (now - 10_000, 20.5), (now - 9_000, 21.5)]), timeout=20)
            await eventually(lambda: _stored(influx_url, prefix, "humidity", [
                (now - 10_000, 40.0), (now - 8_000, 42.0)]), timeout=20)
            await eventually(lambda: _state(influx_url, prefix, "online"), timeout=20)

            death = payload({"name": "bdSeq", "datatype": INT64, "long_value": 7})
            await asyncio.to_thread(publish, mosquitto.url, [(node % "NDEATH", death)])
            await eventually(lambda: _state(influx_url, prefix, "offline"), timeout=20)
            await eventually(lambda: _no_birth_letter(influx_url, group), timeout=20)
    finally:
        commands.close()


async def test_a_rebirth_request_while_the_broker_is_away_is_dropped_not_raised(
        make_mosquitto: Callable[..., Mosquitto]) -> None:
    broker = make_mosquitto()
    async with Subscriber(MqttOptions(broker.url, "c-away"), ["spBv1.0/#"]) as sub:
        await sub.wait_connected(10)
        broker.stop()
        await eventually(lambda: not sub.connected)
        sub.publish("spBv1.0/g/NCMD/e", rebirth_command(0))  # logged; the next gap asks again


def _asked(commands: Recorder, topic: str) -> None:
    requests = [parse(raw) for t, raw in list(commands.messages) if t == topic]
    assert requests, f"no rebirth request on {topic}"
    (metric,) = requests[0].metrics
    assert (metric.name, metric.value) == ("Node Control/Rebirth", True)


async def _stored(url: str, pilot: str, field: str, expected: list[tuple[int, float]]) -> None:
    """Exactly these (ms, value) points of `field` on the edge node's device."""
    start, end = expected[0][0] - 60_000, expected[-1][0] + 60_000
    where = (("pilot", (pilot,)), ("gateway", ("plant",)), ("device", ("plc-1",)))
    query = Aggregate(("sensor",), field, Stat.MAX, ((start * 1_000_000, end * 1_000_000),),
                      where=where, every_s=0.001)
    async with open_reader(url) as reader:
        got = await reader.aggregate(query)
    assert [(r.start, r.value) for r in got] == [(ts * 1_000_000, value)
                                                  for ts, value in expected]


async def _state(url: str, pilot: str, state: str) -> None:
    async with open_reader(url) as reader:
        points = await reader.latest("device_status",
                                     where=(("pilot", (pilot,)), ("device", ("plc-1",))))
    assert [p.fields.get("state") for p in points] == [state]


async def _no_birth_letter(url: str, group: str) -> None:
    async with open_reader(url) as reader:
        letters = await reader.dead_letters(reason="no_birth")
    mine = [d for d in letters if d.topic == f"spBv1.0/{group}/NDATA/plc-2"]
    assert len(mine) == 1, letters
    assert "before its NBIRTH; rebirth requested" in mine[0].detail
