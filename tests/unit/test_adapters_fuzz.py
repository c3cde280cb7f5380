"""Nothing a gateway sends can crash an adapter: arbitrary bytes, arbitrary JSON-ish documents
and mutated real samples give points, rejections or a skip — never an exception.

The adapters' `decode` is called directly, bypassing the backstop in `Adapter.__call__` that
turns an unexpected exception into an `undecodable` dead letter: that backstop must never be
what makes these tests pass.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.decode import Limits, cayenne
from ingest.decode.adapter import Adapter
from ingest.decode.codecs import CodecError
from ingest.decode.lineprotocol import LineError, parse_line
from ingest.decode.sources import Source, decoder_for
from ingest.model import Decoded, Point, Reason

DATA = Path(__file__).parents[1] / "data" / "payloads"
RECEIVED_NS = 1_700_000_000_000_000_000
SETTINGS = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _adapter(fmt: str, **extra: Any) -> Adapter:
    topic = "zigbee2mqtt/#" if fmt == "zigbee2mqtt" else "#"
    decoder = decoder_for(Source(name="fuzz", format=fmt, topic=topic, pilot="p", **extra),
                          Limits())
    assert isinstance(decoder, Adapter)
    return decoder


ADAPTERS = {
    "ttn-v3": _adapter("ttn-v3", codec="cayenne-lpp"),
    "ttn-v3-nocodec": _adapter("ttn-v3"),
    "chirpstack-v4": _adapter("chirpstack-v4", codec="cayenne-lpp"),
    "zigbee2mqtt": _adapter("zigbee2mqtt", fields={"t": {"metric": "temperature",
                                                         "unit": "°F"}}),
    "tasmota": _adapter("tasmota", timezone="Europe/Athens"),
    "influx-lp": _adapter("influx-lp"),
}
TOPICS = st.sampled_from([
    "v3/app@ttn/devices/dev1/up", "v3/app@ttn/devices/dev1/join",
    "application/a/device/0101/event/up", "application/a/device/0101/event/status",
    "zigbee2mqtt/kitchen/sensor", "zigbee2mqtt/bridge/state", "zigbee2mqtt/a/availability",
    "tele/pond/SENSOR", "tele/pond/LWT", "tele/pond/STATE", "telegraf/h/cpu", "", "/", "#",
    "zigbee2mqtt/", "tele//SENSOR",
]) | st.text(max_size=40)

JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.sampled_from([
        "temperature", "Temperature", "humidity", "battery", "linkquality", "voltage",
        "Time", "Epoch", "TempUnit", "PressureUnit", "BME280", "DS18B20", "last_seen",
        "end_device_ids", "device_id", "uplink_message", "decoded_payload", "frm_payload",
        "received_at", "rx_metadata", "rssi", "snr", "deviceInfo", "devEui", "object",
        "data", "time", "rxInfo", "state", "pm2_5", "x",
    ]) | st.text(max_size=10), children, max_size=6),
    max_leaves=25,
)


def _check(decoded: Decoded) -> None:
    """Whatever came out has the stored shape, and each dead letter says why."""
    for p in decoded.points:
        assert isinstance(p, Point)
        assert [k for k, _ in p.tags] == ["pilot", "gateway", "device"]
        assert p.fields, p
        assert isinstance(p.fields["time_source"], str)
        assert all(isinstance(v, float | str) for v in p.fields.values())
    for r in decoded.rejections:
        assert isinstance(r.reason, Reason) and r.detail.strip(), r


def _run(name: str, topic: str, payload: bytes) -> None:
    adapter = ADAPTERS[name]
    out = Decoded()
    adapter.decode(out, topic, payload, RECEIVED_NS)  # no backstop: must not raise
    _check(out)


@SETTINGS
@given(name=st.sampled_from(sorted(ADAPTERS)), topic=TOPICS, payload=st.binary(max_size=300))
def test_arbitrary_bytes(name: str, topic: str, payload: bytes) -> None:
    _run(name, topic, payload)


@SETTINGS
@given(name=st.sampled_from(sorted(ADAPTERS)), topic=TOPICS, doc=JSONISH)
def test_arbitrary_json(name: str, topic: str, doc: Any) -> None:
    _run(name, topic, orjson.dumps(doc))


SAMPLES = sorted(p for p in DATA.iterdir() if p.suffix in (".json", ".txt", ".lp"))


@SETTINGS
@given(name=st.sampled_from(sorted(ADAPTERS)), topic=TOPICS,
       sample=st.sampled_from(SAMPLES), data=st.data())
def test_mutated_samples(name: str, topic: str, sample: Path, data: st.DataObject) -> None:
    raw = bytearray(sample.read_bytes())
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        pos = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
        raw[pos] = data.draw(st.integers(min_value=0, max_value=255))
    _run(name, topic, bytes(raw))


LP_ALPHABET = st.sampled_from([*'abz09 ,=\\"\t.-+eEiutfTF#\r\n', "host=", "1e9", "é"])


@SETTINGS
@given(text=st.lists(LP_ALPHABET, max_size=60).map("".join))
def test_line_protocol_text(text: str) -> None:
    _run("influx-lp", "telegraf/h/m", text.encode())
    for line in text.split("\n"):
        try:
            parse_line(line)
        except LineError:
            pass


@SETTINGS
@given(payload=st.binary(max_size=64), port=st.integers(min_value=0, max_value=255))
def test_cayenne_gives_readings_or_codec_error(payload: bytes, port: int) -> None:
    try:
        values = cayenne.decode(payload, port)
    except CodecError:
        return
    assert values
    for name in values:
        assert name.rsplit("_", 1)[1].isdigit()


TIME_TEXT = st.sampled_from(["2024-01-01T00:00:00Z", "2024-01-01T00:00:00.123456789+00:00",
                             "2024-01-01T00:00:00", "1999-12-31T23:59:59Z", "garbage", ""])
SHAPED = {
    "ttn-v3": st.fixed_dictionaries({
        "end_device_ids": st.fixed_dictionaries({"device_id": st.text(max_size=70)}),
        "uplink_message": st.fixed_dictionaries({
            "received_at": TIME_TEXT | JSONISH,
            "decoded_payload": JSONISH,
            "rx_metadata": st.lists(st.dictionaries(st.sampled_from(["rssi", "snr"]), JSONISH)),
        }, optional={"frm_payload": st.binary(max_size=20).map(
            lambda b: base64.b64encode(b).decode()) | JSONISH}),
    }),
    "chirpstack-v4": st.fixed_dictionaries({
        "deviceInfo": st.fixed_dictionaries({"devEui": st.text(max_size=20) | JSONISH}),
        "time": TIME_TEXT | JSONISH,
        "object": JSONISH,
        "rxInfo": JSONISH,
    }),
    "tasmota": st.fixed_dictionaries({"Time": TIME_TEXT | JSONISH}, optional={
        "Epoch": JSONISH, "TempUnit": st.sampled_from(["C", "F", "K", "X"]) | JSONISH,
        "PressureUnit": st.sampled_from(["hPa", "mmHg", "inHg", "?"]),
        "SHT3X": st.dictionaries(st.sampled_from(["Temperature", "Humidity", "Id"]), JSONISH),
        "DS18B20": JSONISH,
    }),
    "zigbee2mqtt": st.dictionaries(st.sampled_from(["temperature", "battery", "voltage",
                                                    "linkquality", "last_seen", "t"]),
                                   JSONISH),
}
SHAPED_TOPICS = {"ttn-v3": "v3/a@ttn/devices/d/up",
                 "chirpstack-v4": "application/a/device/d/event/up",
                 "tasmota": "tele/pond/SENSOR", "zigbee2mqtt": "zigbee2mqtt/garden/probe"}


@SETTINGS
@given(data=st.data(), name=st.sampled_from(sorted(SHAPED)))
def test_format_shaped_documents(data: st.DataObject, name: str) -> None:
    doc = data.draw(SHAPED[name])
    _run(name, SHAPED_TOPICS[name], orjson.dumps(doc))
