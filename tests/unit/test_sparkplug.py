"""Sparkplug B: births and their alias tables, seq, rebirth requests, deaths, datatypes.

Table-driven: each scenario is a session of messages sent to one fresh decoder; what is
checked is the outcome of its last message — the points, written out by hand (tags,
measurement, every field, the timestamp in ns and its clock), the dead-letter reasons and the
rebirth requests. The payloads are built with the checked-in `sparkplug_b_pb2` (there is no
verbatim binary sample; `tests/data/payloads/sparkplug-b.md` says why), the way Eclipse Tahu's
own Python client builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ingest.decode import Limits
from ingest.decode import sparkplug_b_pb2 as pb
from ingest.decode.sources import Source, decoder_for
from ingest.decode.sparkplug import SparkplugDecoder
from ingest.decode.sparkplug_payload import REBIRTH_METRIC, parse
from ingest.model import Decoded, Point, Reason

PILOT, GATEWAY = "athens", "plant"
T0 = 1_700_000_000_000  # ms: the edge node's clock at its NBIRTH
MS = 1_000_000  # ns
PAYLOAD: Any = pb.Payload  # type: ignore[attr-defined]
# Sparkplug datatypes used below
INT8, INT16, INT32, INT64, UINT32, FLOAT, DOUBLE, BOOLEAN, STRING = 1, 2, 3, 4, 7, 9, 10, 11, 12
DATASET, BYTES, TEMPLATE = 16, 17, 19


def decoder() -> SparkplugDecoder:
    source = Source(name=GATEWAY, format="sparkplug-b", topic="spBv1.0/#", pilot=PILOT)
    d = decoder_for(source, Limits())
    assert isinstance(d, SparkplugDecoder)
    return d


def payload(*metrics: dict[str, Any], seq: int | None = None, ts: int | None = None) -> bytes:
    message = PAYLOAD()
    if ts is not None:
        message.timestamp = ts
    if seq is not None:
        message.seq = seq
    for spec in metrics:
        m = message.metrics.add()
        for key, value in spec.items():
            if key in ("dataset_value", "template_value"):
                getattr(m, key).CopyFrom(value)
            else:
                setattr(m, key, value)
    data: bytes = message.SerializeToString()
    return data


def point(measurement: str, device: str, ts: int, **fields: Any) -> Point:
    return Point(measurement, (("pilot", PILOT), ("gateway", GATEWAY), ("device", device)),
                 fields, ts)


def online(device: str, ts: int, state: str = "online", source: str = "device") -> Point:
    return point("device_status", device, ts, state=state, time_source=source)


def topic(kind: str, edge: str = "plc-1", device: str | None = None, group: str = "g1") -> str:
    return f"spBv1.0/{group}/{kind}/{edge}" + (f"/{device}" if device else "")


NCMD = "spBv1.0/g1/NCMD/plc-1"

# --- the session every scenario starts from ------------------------------------------------

NBIRTH = (topic("NBIRTH"), payload(
    {"name": "bdSeq", "datatype": INT64, "long_value": 3},
    {"name": "Node Control/Rebirth", "alias": 0, "datatype": BOOLEAN, "boolean_value": False},
    {"name": "Inputs/Temperature", "alias": 1, "datatype": FLOAT, "float_value": 21.7},
    {"name": "Inputs/Humidity", "alias": 2, "datatype": DOUBLE, "double_value": 40.5},
    {"name": "Pump/Running", "alias": 3, "datatype": BOOLEAN, "boolean_value": True},
    {"name": "Level", "alias": 4, "datatype": INT16, "int_value": 65533},  # -3, Tahu-style
    {"name": "Properties/Hardware Make", "alias": 5, "datatype": STRING,
     "string_value": "Acme"},
    seq=0, ts=T0), T0 + 250)
DBIRTH = (topic("DBIRTH", device="pump 3"), payload(
    {"name": "Flow", "alias": 10, "datatype": DOUBLE, "double_value": 12.5},
    {"name": "Battery", "alias": 11, "datatype": UINT32, "int_value": 87},
    seq=1, ts=T0 + 100), T0 + 350)


def ndata(*metrics: dict[str, Any], seq: int = 1, ts: int = T0 + 1000,
          received: int = T0 + 1250) -> tuple[str, bytes, int]:
    return topic("NDATA"), payload(*metrics, seq=seq, ts=ts), received


def ndeath(bd_seq: int | None, received: int = T0 + 9000) -> tuple[str, bytes, int]:
    metrics = [] if bd_seq is None else [{"name": "bdSeq", "datatype": INT64,
                                          "long_value": bd_seq}]
    return topic("NDEATH"), payload(*metrics, ts=T0 - 60_000), received  # the will's ts: stale


@dataclass
class Case:
    id: str
    steps: list[tuple[str, bytes, int]]  # (topic, payload, received ms)
    points: list[Point]
    reasons: list[Reason] = field(default_factory=list)
    replies: list[str] = field(default_factory=list)  # topics of rebirth requests
    skipped: int = 0


CASES: list[Case] = [
    Case("NBIRTH: numbers stored under their leaf or own name, online", [NBIRTH], [
        point("sensor", "plc-1", T0 * MS, temperature=21.7, humidity=40.5, pump_running=1.0,
              level=-3.0, ingest_delay_s=0.25, time_source="device"),
        online("plc-1", T0 * MS)]),
    Case("NDATA by alias, metric timestamps apart", [NBIRTH, ndata(
        {"alias": 1, "float_value": 22.5},
        {"alias": 4, "int_value": 0xFFFFFFFE, "timestamp": T0 + 900})], [  # -2, Java-style
        point("sensor", "plc-1", (T0 + 1000) * MS, temperature=22.5, ingest_delay_s=0.25,
              time_source="device"),
        point("sensor", "plc-1", (T0 + 900) * MS, level=-2.0, ingest_delay_s=0.35,
              time_source="device")]),
    Case("NDATA by name (aliases are optional)", [NBIRTH, ndata(
        {"name": "Inputs/Humidity", "double_value": 41.0})], [
        point("sensor", "plc-1", (T0 + 1000) * MS, humidity=41.0, ingest_delay_s=0.25,
              time_source="device")]),
    Case("seq wraps from 255 to 0 without a gap", [NBIRTH,
        *[ndata({"alias": 2, "double_value": 40.0}, seq=s, ts=T0 + s, received=T0 + s)
          for s in range(1, 256)],
        ndata({"alias": 2, "double_value": 39.0}, seq=0, ts=T0 + 300, received=T0 + 300)], [
        point("sensor", "plc-1", (T0 + 300) * MS, humidity=39.0, ingest_delay_s=0.0,
              time_source="device")]),
    Case("seq gap: stored, and a rebirth requested", [NBIRTH, ndata(
        {"alias": 1, "float_value": 23.0}, seq=5)], [
        point("sensor", "plc-1", (T0 + 1000) * MS, temperature=23.0, ingest_delay_s=0.25,
              time_source="device")], replies=[NCMD]),
    Case("unknown alias: the rest stored, no_birth dead letter, rebirth", [NBIRTH, ndata(
        {"alias": 1, "float_value": 23.0}, {"alias": 99, "double_value": 1.0})], [
        point("sensor", "plc-1", (T0 + 1000) * MS, temperature=23.0, ingest_delay_s=0.25,
              time_source="device")], [Reason.NO_BIRTH], [NCMD]),
    Case("a name the birth did not declare: stored, rebirth", [NBIRTH, ndata(
        {"name": "Inputs/Pressure", "datatype": DOUBLE, "double_value": 1013.0})], [
        point("sensor", "plc-1", (T0 + 1000) * MS, pressure=1013.0, ingest_delay_s=0.25,
              time_source="device")], replies=[NCMD]),
    Case("NDATA before NBIRTH", [ndata({"alias": 1, "float_value": 23.0})], [],
         [Reason.NO_BIRTH], [NCMD]),
    Case("DDATA before its DBIRTH", [NBIRTH, (topic("DDATA", device="pump 3"), payload(
        {"alias": 10, "double_value": 3.0}, seq=1, ts=T0 + 1000), T0 + 1250)], [],
         [Reason.NO_BIRTH], [NCMD]),
    Case("NDATA after NDEATH is before the next NBIRTH", [NBIRTH, ndeath(3), ndata(
        {"alias": 1, "float_value": 23.0}, received=T0 + 20_000)], [], [Reason.NO_BIRTH],
        [NCMD]),
    Case("DBIRTH: the device is edge_device; battery % to status", [NBIRTH, DBIRTH], [
        point("sensor", "plc-1_pump_3", (T0 + 100) * MS, flow=12.5, ingest_delay_s=0.25,
              time_source="device"),
        point("device_status", "plc-1_pump_3", (T0 + 100) * MS, battery=0.87,
              time_source="device"),
        online("plc-1_pump_3", (T0 + 100) * MS)]),
    Case("DDATA by alias", [NBIRTH, DBIRTH, (topic("DDATA", device="pump 3"), payload(
        {"alias": 10, "double_value": 13.0}, seq=2, ts=T0 + 2000), T0 + 2500)], [
        point("sensor", "plc-1_pump_3", (T0 + 2000) * MS, flow=13.0, ingest_delay_s=0.5,
              time_source="device")]),
    Case("DBIRTH before NBIRTH: stored, rebirth", [DBIRTH], [
        point("sensor", "plc-1_pump_3", (T0 + 100) * MS, flow=12.5, ingest_delay_s=0.25,
              time_source="device"),
        point("device_status", "plc-1_pump_3", (T0 + 100) * MS, battery=0.87,
              time_source="device"),
        online("plc-1_pump_3", (T0 + 100) * MS)], replies=[NCMD]),
    Case("historical metrics at their own time; unknown names ask for nothing", [NBIRTH, ndata(
        {"alias": 1, "float_value": 19.0, "timestamp": T0 - 3_600_000, "is_historical": True},
        {"name": "Old/Gone", "datatype": DOUBLE, "double_value": 5.0,
         "timestamp": T0 - 3_600_000, "is_historical": True})], [
        point("sensor", "plc-1", (T0 - 3_600_000) * MS, temperature=19.0, old_gone=5.0,
              ingest_delay_s=3601.25, time_source="device")]),
    Case("historical metric without a timestamp: dead letter, the rest stored", [NBIRTH, ndata(
        {"alias": 1, "float_value": 19.0, "is_historical": True},
        {"alias": 2, "double_value": 42.0})], [
        point("sensor", "plc-1", (T0 + 1000) * MS, humidity=42.0, ingest_delay_s=0.25,
              time_source="device")], [Reason.BAD_TIMESTAMP]),
    Case("no timestamps at all: receive time", [NBIRTH, (topic("NDATA"), payload(
        {"alias": 2, "double_value": 42.0}, seq=1), T0 + 1250)], [
        point("sensor", "plc-1", (T0 + 1250) * MS, humidity=42.0, ingest_delay_s=0.0,
              time_source="received")]),
    Case("strings, bytes, datasets, templates, nulls: not stored, counted", [(topic("NBIRTH"),
        payload({"name": "Make", "alias": 5, "datatype": STRING, "string_value": "Acme"},
                {"name": "Blob", "alias": 6, "datatype": BYTES, "is_null": True},
                {"name": "Table", "alias": 7, "datatype": DATASET, "is_null": True},
                {"name": "UDT", "alias": 8, "datatype": TEMPLATE, "is_null": True},
                seq=0, ts=T0), T0), ndata(
        {"alias": 5, "string_value": "Acme 2"},
        {"alias": 6, "bytes_value": b"\x00\x01"},
        {"alias": 7, "dataset_value": PAYLOAD.DataSet(num_of_columns=1, columns=["a"],
                                                      types=[DOUBLE])},
        {"alias": 8, "template_value": PAYLOAD.Template(template_ref="Motor")},
        {"alias": 5, "is_null": True})], [], skipped=1),
    Case("NDEATH with the NBIRTH's bdSeq: node and its devices offline at receive time",
         [NBIRTH, DBIRTH, ndeath(3)], [
             online("plc-1", (T0 + 9000) * MS, "offline", "received"),
             online("plc-1_pump_3", (T0 + 9000) * MS, "offline", "received")]),
    Case("NDEATH of an earlier session (bdSeq mismatch): ignored", [NBIRTH, ndeath(2)], [],
         skipped=1),
    Case("NDEATH without a birth: ignored", [ndeath(3)], [], skipped=1),
    Case("DDEATH: the device offline", [NBIRTH, DBIRTH, (topic("DDEATH", device="pump 3"),
         payload(seq=2, ts=T0 + 5000), T0 + 5100)], [
        online("plc-1_pump_3", (T0 + 5000) * MS, "offline")]),
    Case("STATE, NCMD, DCMD, certificates: skipped", [NBIRTH,
         ("spBv1.0/STATE/scada-1", b'{"online": true, "timestamp": 1}', T0),
         (NCMD, payload({"name": REBIRTH_METRIC, "boolean_value": True}), T0),
         ("spBv1.0/g1/DCMD/plc-1/pump", b"", T0),
         ("$sparkplug/certificates/spBv1.0/g1/NBIRTH/plc-1", NBIRTH[1], T0)], [],
         skipped=1),
    Case("bad topic", [("spBv1.0/g1/NDATA", payload(seq=0), T0)], [], [Reason.BAD_TOPIC]),
    Case("device topic without device", [(topic("DDATA"), payload(seq=0), T0)], [],
         [Reason.BAD_TOPIC]),
    Case("not protobuf", [(topic("NDATA"), b"{\"temperature\": 21}", T0)], [],
         [Reason.UNDECODABLE]),
]


CASE = {c.id: c for c in CASES}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_session(case: Case) -> None:
    d = decoder()
    decoded = Decoded()
    for t, raw, received_ms in case.steps:
        decoded = d(t, raw, received_ms * MS)
    assert decoded.points == case.points
    assert [r.reason for r in decoded.rejections] == case.reasons
    assert [t for t, _ in decoded.replies] == case.replies
    assert decoded.skipped == case.skipped


def test_the_rebirth_request_is_ncmd_node_control_rebirth_true() -> None:
    d = decoder()
    (reply,) = d(*ndata({"alias": 1, "float_value": 1.0})[:2], T0 * MS).replies
    assert reply[0] == "spBv1.0/g1/NCMD/plc-1"
    request = parse(reply[1])
    (metric,) = request.metrics
    assert (metric.name, metric.datatype, metric.value) == ("Node Control/Rebirth", BOOLEAN,
                                                            True)
    assert request.timestamp_ms == T0


def test_rebirth_requests_are_rate_limited_per_edge_node() -> None:
    d = decoder()
    asked = []
    for i, received in enumerate([T0, T0 + 1000, T0 + 4999, T0 + 5000, T0 + 5001]):
        for edge in ("plc-1", "plc-2"):
            t, raw = topic("NDATA", edge), payload({"alias": 1, "float_value": 1.0}, seq=i)
            asked += [(received, r[0]) for r in d(t, raw, received * MS).replies]
    assert asked == [(T0, "spBv1.0/g1/NCMD/plc-1"), (T0, "spBv1.0/g1/NCMD/plc-2"),
                     (T0 + 5000, "spBv1.0/g1/NCMD/plc-1"),
                     (T0 + 5000, "spBv1.0/g1/NCMD/plc-2")]


def test_what_is_not_stored_is_counted_by_datatype_and_name() -> None:
    d = decoder()
    for t, raw, received in CASE["strings, bytes, datasets, templates, nulls: not stored, "
                                 "counted"].steps:
        d(t, raw, received * MS)
    assert d.not_stored == {"string": 2, "bytes": 1, "dataset": 1, "template": 1, "null": 4}
    assert d.dropped_fields == {"Make": 2, "Blob": 1, "Table": 1, "UDT": 1}
    assert d.ignored == {}


def test_skips_are_counted_by_kind() -> None:
    d = decoder()
    skips = CASE["STATE, NCMD, DCMD, certificates: skipped"].steps
    for t, raw, received in [*skips, ndeath(2), ndeath(None)]:
        d(t, raw, received * MS)
    assert d.ignored == {"STATE": 1, "NCMD": 1, "DCMD": 1, "certificate": 1,
                         "NDEATH (bdSeq does not match the NBIRTH)": 2}


def test_dead_letter_details_name_the_node_and_the_alias() -> None:
    d = decoder()
    early = d(*ndata({"alias": 1, "float_value": 1.0})[:2], T0 * MS)
    assert early.rejections[0].detail == ("NDATA of plc-1 (group g1) before its NBIRTH; "
                                          "rebirth requested")
    d(*NBIRTH[:2], T0 * MS)
    unknown = d(*ndata({"alias": 7, "int_value": 1}, {"alias": 8, "int_value": 1})[:2],
                T0 * MS)
    assert unknown.rejections[0].detail == ("NDATA of plc-1 (group g1) has metrics its NBIRTH "
                                            "did not declare (alias 7, 8); rebirth requested")
    assert unknown.rejections[0].payload == ndata({"alias": 7, "int_value": 1},
                                                  {"alias": 8, "int_value": 1})[1]


def test_signed_and_unsigned_integers_both_encodings() -> None:
    d = decoder()
    births = [{"name": f"v{i}", "alias": i, "datatype": dt, key: raw}
              for i, (dt, key, raw) in enumerate([
                  (INT8, "int_value", 251), (INT8, "int_value", 0xFFFFFFFB),
                  (INT32, "int_value", 0x80000000), (INT64, "long_value", 2**64 - 1),
                  (UINT32, "int_value", 0xFFFFFFFF), (FLOAT, "float_value", 0.1)])]
    decoded = d(topic("NBIRTH"), payload(*births, seq=0, ts=T0), T0 * MS)
    fields = decoded.points[0].fields
    assert [fields[f"v{i}"] for i in range(6)] == [-5.0, -5.0, -2147483648.0, -1.0,
                                                   4294967295.0, 0.1]


# --- state kept beside the spool -----------------------------------------------------------
def test_attached_state_survives_a_new_decoder_and_a_death_clears_it(tmp_path: Path) -> None:
    first = decoder()
    first.attach(tmp_path)
    birth = payload({"name": "bdSeq", "datatype": INT64, "long_value": 3},
                    {"name": "Temperature", "alias": 1, "datatype": FLOAT,
                     "float_value": 20.0}, seq=0, ts=T0)
    first(topic("NBIRTH"), birth, T0 * MS)
    first(topic("DBIRTH", device="pump"), payload(
        {"name": "Flow", "alias": 2, "datatype": DOUBLE, "double_value": 1.0},
        seq=1, ts=T0), T0 * MS)
    first.detach()

    second = decoder()  # a restarted collector
    second.attach(tmp_path)
    out = second(topic("NDATA"), payload({"alias": 1, "float_value": 21.0}, seq=9, ts=T0 + 1),
                 T0 * MS)
    dev = second(topic("DDATA", device="pump"),
                 payload({"alias": 2, "double_value": 2.0}, seq=10, ts=T0 + 2), T0 * MS)
    assert not out.rejections and not dev.rejections
    assert [p.fields["temperature"] for p in out.points] == [21.0]
    assert [p.fields["flow"] for p in dev.points] == [2.0]
    assert not out.replies, "a restart is no seq gap: the first seq after it sets the count"
    death = payload({"name": "bdSeq", "datatype": INT64, "long_value": 3})
    second(topic("NDEATH"), death, T0 * MS)
    second.detach()

    third = decoder()
    third.attach(tmp_path)
    late = third(topic("NDATA"), payload({"alias": 1, "float_value": 1.0}, seq=0), T0 * MS)
    assert [r.reason for r in late.rejections] == [Reason.NO_BIRTH]
    third.detach()
