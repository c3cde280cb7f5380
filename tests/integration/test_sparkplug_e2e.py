"""A Sparkplug B session end to end: an edge node publishes to real Mosquitto, an in-process
collector with a `sparkplug-b` source stores into real InfluxDB, and its rebirth requests are
seen on the broker by a plain paho subscriber, as the edge node would see them.

What is checked is what an operator sees: the points in InfluxDB (measurement, tags, fields,
times, by InfluxQL), the device states, the dead letters with their reasons, and the NCMD
rebirth requests on the broker (DESIGN: the collector's one publication, for sparkplug-b).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingest.decode import sparkplug_b_pb2 as pb
from ingest.decode.sparkplug_payload import parse, rebirth_command
from ingest.mqtt import MqttOptions, Subscriber
from ingest.stores import open_reader
from tests.collectors import collector, start_process, terminate
from tests.mqttclient import Recorder, publish
from tests.servers import InfluxDB, Mosquitto
from tests.support import eventually, wait_until

PAYLOAD: Any = pb.Payload  # type: ignore[attr-defined]
INT64, FLOAT, DOUBLE, BOOLEAN = 4, 9, 10, 11
MS = 1_000_000  # ns


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


async def test_sparkplug_session(mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str,
                                 prefix: str, tmp_path: Path) -> None:
    group = prefix
    node, plc2 = f"spBv1.0/{group}/%s/plc-1", f"spBv1.0/{group}/NDATA/plc-2"
    now = int(time.time() * 1000)
    database = influx_url.rsplit("/", 1)[1]
    source = {"name": "plant", "format": "sparkplug-b", "topic": "spBv1.0/#", "pilot": prefix}
    commands = Recorder(mosquitto.url, "spBv1.0/+/NCMD/+")  # returns once subscribed
    early = payload({"alias": 1, "float_value": 1.0}, seq=3, ts=now - 10_000)
    unknown_alias = payload({"alias": 9, "float_value": 99.0}, seq=6, ts=now - 7_000)
    try:
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
                (plc2, early),  # DATA before its node's birth
                (node % "NBIRTH", birth),
                (node % "NDATA", payload({"alias": 1, "float_value": 21.5}, seq=1,
                                         ts=now - 9_000)),
                (node % "NDATA", payload({"alias": 2, "double_value": 42.0}, seq=5,
                                         ts=now - 8_000)),  # seq 2-4 lost
                (node % "NDATA", unknown_alias),  # an alias the birth did not declare
                (node % "NDATA", b"\xff not protobuf"),
                (node % "NSTATUS", b""),  # not a Sparkplug B message type
                (node % "NDEATH", payload({"name": "bdSeq", "datatype": INT64,
                                           "long_value": 6})),  # a late will: ignored
                # Stored last: once it is, everything before it has been handled.
                (node % "NDATA", payload({"alias": 1, "float_value": 22.5}, seq=7,
                                         ts=now - 6_000)),
            ])

            # Rebirth requests: to the node with a seq gap, and to the one never born.
            await eventually(lambda: _asked(commands, f"spBv1.0/{group}/NCMD/plc-1"))
            await eventually(lambda: _asked(commands, f"spBv1.0/{group}/NCMD/plc-2"))

            letters = await eventually(lambda: _letters(influx_url, group, 4), timeout=20)
            assert [(topic, reason) for topic, reason, _, _ in letters] == [
                (node % "NDATA", "no_birth"),
                (node % "NDATA", "undecodable"),
                (plc2, "no_birth"),
                (node % "NSTATUS", "bad_topic"),
            ]
            by_payload = {raw: detail for _, _, detail, raw in letters}
            # The unreadable values stay in the dead letter byte for byte, with why.
            assert "alias 9" in by_payload[unknown_alias]
            assert "before its NBIRTH; rebirth requested" in by_payload[early]
            assert "NSTATUS" in by_payload[b""]

            rows = await eventually(lambda: _rows(influxdb, database, prefix, 4), timeout=20)
            assert rows == [
                (now - 10_000, "plant", "plc-1", 40.0, 20.5),
                (now - 9_000, "plant", "plc-1", None, 21.5),
                (now - 8_000, "plant", "plc-1", 42.0, None),
                (now - 6_000, "plant", "plc-1", None, 22.5),
            ], "nothing of plc-2 (never born) nor of alias 9 is stored"
            assert _states(influxdb, database, prefix) == [("plc-1", "online")], \
                "the will of an earlier session (bdSeq 6) changes nothing"

            death = payload({"name": "bdSeq", "datatype": INT64, "long_value": 7})
            await asyncio.to_thread(publish, mosquitto.url, [(node % "NDEATH", death)])
            await eventually(lambda: _states(influxdb, database, prefix)
                             == [("plc-1", "online"), ("plc-1", "offline")], timeout=20)
    finally:
        commands.close()


async def test_a_rebirth_request_while_the_broker_is_away_is_dropped_not_raised(
        make_mosquitto: Callable[..., Mosquitto], caplog: pytest.LogCaptureFixture) -> None:
    broker = make_mosquitto()
    async with Subscriber(MqttOptions(broker.url, "c-away"), ["spBv1.0/#"]) as sub:
        await sub.wait_connected(10)
        broker.stop()
        await eventually(lambda: not sub.connected)
        with caplog.at_level(logging.INFO):
            sub.publish("spBv1.0/g/NCMD/e", rebirth_command(0))  # logged; asked again later
        assert any("dropped" in r.getMessage() and "spBv1.0/g/NCMD/e" in r.getMessage()
                   for r in caplog.records), caplog.text
        broker.start()
        await sub.wait_connected(30)
        seen = Recorder(broker.url, "spBv1.0/g/NCMD/+")
        try:  # the next request, once the broker is back, reaches the edge node
            await eventually(lambda: _published(sub, seen, rebirth_command(1)), timeout=20)
        finally:
            seen.close()


def _published(sub: Subscriber, seen: Recorder, marker: bytes) -> bool:
    if not any(raw == marker for _, raw in seen.messages):
        sub.publish("spBv1.0/g/NCMD/m", marker)  # QoS 0: sent again until it is seen
        return False
    return True


def _asked(commands: Recorder, topic: str) -> list[object]:
    requests = [parse(raw) for t, raw in list(commands.messages) if t == topic]
    assert requests, f"no rebirth request on {topic}"
    for request in requests:
        (metric,) = request.metrics
        assert (metric.name, metric.value) == ("Node Control/Rebirth", True)
    return requests  # type: ignore[return-value]


async def _letters(url: str, group: str, expected: int) -> list[tuple[str, str, str, bytes]]:
    """(topic, reason, detail, payload bytes) of this group's dead letters, as `citypilot
    deadletters` lists them, sorted."""
    async with open_reader(url) as store:
        rows = await store.dead_letters(limit=1000)
    mine = sorted((d.topic, d.reason, d.detail, d.raw()) for d in rows
                  if d.topic.startswith(f"spBv1.0/{group}/"))
    assert len(mine) == expected, mine
    return mine


def _series(influxdb: InfluxDB, database: str, q: str) -> list[dict[str, Any]]:
    results: Any = influxdb.query(q, database=database)["results"]
    series: list[dict[str, Any]] = results[0].get("series", [])
    return series


def _rows(influxdb: InfluxDB, database: str, pilot: str, at_least: int
          ) -> list[tuple[int, str, str, float | None, float | None]]:
    """(ms, gateway, device, humidity, temperature) of every `sensor` point of the pilot."""
    series = _series(influxdb, database, 'SELECT "gateway", "device", "humidity", '
                     f"\"temperature\" FROM \"sensor\" WHERE \"pilot\" = '{pilot}'")
    assert series, "no sensor points yet"
    rows = [(ts // MS, gw, dev, hum, temp) for ts, gw, dev, hum, temp in series[0]["values"]]
    assert len(rows) >= at_least, rows
    return rows


def _states(influxdb: InfluxDB, database: str, pilot: str) -> list[tuple[str, str]]:
    series = _series(influxdb, database, 'SELECT "device", "state" FROM "device_status" '
                     f"WHERE \"pilot\" = '{pilot}'")
    states = [(device, state) for _, device, state in series[0]["values"]] if series else []
    assert states, "no device_status yet"
    return states


def test_a_collector_restart_keeps_births_and_aliases(
        mosquitto: Mosquitto, influxdb: InfluxDB, influx_url: str, prefix: str,
        tmp_path: Path) -> None:
    """A `citypilot collect` process killed after a node's births and started again reads the
    node's next DATA through the tables of those births: no `no_birth` dead letter, no
    rebirth request."""
    group, database = prefix, influx_url.rsplit("/", 1)[1]
    node, device = f"spBv1.0/{group}/%s/plc-1", f"spBv1.0/{group}/%s/plc-1/pump"
    now = int(time.time() * 1000)
    config = tmp_path / "citypilot.toml"
    config.write_text('[[sources]]\nname = "plant"\nformat = "sparkplug-b"\n'
                      f'topic = "spBv1.0/#"\npilot = "{prefix}"\n')
    cid, spool = f"spb-{prefix}", tmp_path / "spool"

    def collect() -> Any:
        return start_process(tmp_path, mosquitto.url, influx_url, client_id=cid,
                             spool_dir=spool, CITYPILOT_CONFIG=str(config))

    def subscribed(times: int) -> bool:
        return (tmp_path / f"collector-{cid}.log").read_text().count("subscribed to") >= times

    def temperatures(n: int) -> list[tuple[int, str, float | None]]:
        series = _series(influxdb, database, 'SELECT "device", "temperature" FROM "sensor" '
                         f"WHERE \"pilot\" = '{prefix}'")
        rows = [(ts // MS, dev, temp) for ts, dev, temp in series[0]["values"]] if series else []
        assert len(rows) >= n, rows
        return rows

    commands = Recorder(mosquitto.url, f"spBv1.0/{group}/NCMD/+")
    proc = collect()
    try:
        wait_until(lambda: subscribed(1), timeout=20)
        temperature = {"name": "Inputs/Temperature", "alias": 1, "datatype": FLOAT,
                       "float_value": 20.0}
        publish(mosquitto.url, [
            (node % "NBIRTH", payload({"name": "bdSeq", "datatype": INT64, "long_value": 1},
                                      temperature, seq=0, ts=now - 10_000)),
            (device % "DBIRTH", payload(dict(temperature, alias=7), seq=1, ts=now - 10_000)),
            (node % "NDATA", payload({"alias": 1, "float_value": 21.0}, seq=2,
                                     ts=now - 9_000)),
        ])
        wait_until(lambda: temperatures(3), timeout=30)
        assert terminate(proc, signal.SIGKILL) == -signal.SIGKILL

        proc = collect()
        wait_until(lambda: subscribed(2), timeout=20)
        publish(mosquitto.url, [  # aliases only: readable through the births alone
            (node % "NDATA", payload({"alias": 1, "float_value": 22.0}, seq=3,
                                     ts=now - 8_000)),
            (device % "DDATA", payload({"alias": 7, "float_value": 23.0}, seq=4,
                                       ts=now - 7_000)),
        ])
        rows = wait_until(lambda: temperatures(5), timeout=30)
        assert sorted(rows) == [(now - 10_000, "plc-1", 20.0), (now - 10_000, "plc-1_pump", 20.0),
                                (now - 9_000, "plc-1", 21.0), (now - 8_000, "plc-1", 22.0),
                                (now - 7_000, "plc-1_pump", 23.0)]
        assert terminate(proc) == 0
    finally:
        commands.close()
    assert asyncio.run(_no_letters(influx_url, group))
    log = (tmp_path / f"collector-{cid}.log").read_text()
    assert "1 edge nodes restored" in log
    # The collector asks for a rebirth before it stores the message that made it ask: none
    # was asked, or the recorder (subscribed throughout) would hold it by now.
    assert not [t for t, _ in commands.messages], commands.messages


async def _no_letters(url: str, group: str) -> bool:
    async with open_reader(url) as store:
        rows = await store.dead_letters(limit=1000)
    mine = [(d.topic, d.reason, d.detail) for d in rows if d.topic.startswith(f"spBv1.0/{group}/")]
    assert mine == [], mine
    return True
