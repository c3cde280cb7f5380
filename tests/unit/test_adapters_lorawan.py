"""The LoRaWAN adapters (The Things Stack v3, ChirpStack v4): codecs, skipped events,
mappings."""

from __future__ import annotations

import base64

import orjson
import pytest

from ingest.model import Reason
from tests.adapters import adapter, point, rejections, sample


def _bosch_tts_with(frm_payload: str) -> bytes:
    doc = orjson.loads(sample("ttn-v3-uplink-bosch-parking-nodecoder.json"))
    doc["uplink_message"]["frm_payload"] = frm_payload
    return orjson.dumps(doc)


def test_tts_raw_uplink_with_the_cayenne_codec_gives_points() -> None:
    # The TTS docs' own CayenneLPP example: temperature 27.2 on channel 3, 25.5 on channel 5.
    payload = _bosch_tts_with(base64.b64encode(bytes.fromhex("036701100567 00ff".replace(" ", "")))
                              .decode())
    tts = adapter("ttn-v3", "tts", codec="cayenne-lpp",
                  fields={"temperature_3": "temperature"})
    decoded = tts("v3/a@ttn/devices/eui-1000000000000001/up", payload,
                  1_684_474_416_000_000_000)
    ts = 1_684_474_415_641_841_782
    assert decoded.points == [
        point("sensor", "tts", "eui-1000000000000001", ts, temperature=27.2,
              temperature_5=25.5, ingest_delay_s=0.358158218, time_source="network"),
        point("device_status", "tts", "eui-1000000000000001", ts, rssi=-35.0, snr=13.2,
              time_source="network"),
    ]
    assert decoded.rejections == []
    assert decoded.unknown_metrics == ["temperature_5"]


def test_cayenne_channels_map_without_configuration_when_unambiguous() -> None:
    lpp = bytes.fromhex("0167010002687f037327bf")  # 25.6 °C, 63.5 %, 1017.5 hPa
    payload = _bosch_tts_with(base64.b64encode(lpp).decode())
    decoded = adapter("ttn-v3", "tts", codec="cayenne-lpp")("v3/x/devices/d/up", payload,
                                                            1_684_474_416_000_000_000)
    assert decoded.points[0].fields == {"temperature": 25.6, "humidity": 63.5,
                                        "pressure": 1017.5, "ingest_delay_s": 0.358158218,
                                        "time_source": "network"}


def test_two_channels_of_one_quantity_keep_their_own_names() -> None:
    # TTS's own CayenneLPP formatter output (float32 noise included) with no mapping.
    doc = {"end_device_ids": {"device_id": "d1"},
           "uplink_message": {"received_at": "2024-01-01T00:00:00Z",
                              "decoded_payload": {"temperature_3": 27.200000762939453,
                                                  "temperature_5": 25.5}}}
    decoded = adapter("ttn-v3", "tts")("v3/a/devices/d1/up", orjson.dumps(doc),
                                       1_704_067_201_000_000_000)
    assert decoded.points == [point("sensor", "tts", "d1", 1_704_067_200_000_000_000,
                                    temperature_3=27.200000762939453, temperature_5=25.5,
                                    ingest_delay_s=1.0, time_source="network")]


def test_cayenne_garbage_is_undecodable_not_an_exception() -> None:
    cs = adapter("chirpstack-v4", "chirpstack", codec="cayenne-lpp")
    decoded = cs("application/x/device/1000000000000001/event/up",
                 sample("chirpstack-v4-up-bosch-parking.json"), 1_684_741_626_000_000_000)
    assert rejections(decoded) == [(Reason.UNDECODABLE, "codec cayenne-lpp: offset 1: unknown "
                                    "CayenneLPP type 18 (0x12) on channel 1")]
    assert [p.measurement for p in decoded.points] == ["device_status"]


def test_chirpstack_object_and_mapping_with_unit() -> None:
    doc = orjson.loads(sample("chirpstack-v4-up.json"))
    doc["object"] = {"tempF": 68.0, "batteryLevel": 87, "occupied": True}
    cs = adapter("chirpstack-v4", "chirpstack", kinds={"01010101*": "parking"},
                 fields={"tempF": {"metric": "temperature", "unit": "°F"}})
    decoded = cs("application/a/device/0101010101010101/event/up", orjson.dumps(doc),
                 1_658_136_856_000_000_000)
    ts = 1_658_136_855_775_023_242
    assert decoded.points == [
        point("parking", "chirpstack", "0101010101010101", ts, temperature=20.0,
              occupied=1.0, ingest_delay_s=0.224976758, time_source="network"),
        point("device_status", "chirpstack", "0101010101010101", ts, rssi=-36.0, snr=10.5,
              battery=0.87, time_source="network"),
    ]


@pytest.mark.parametrize("event", ["join", "status", "ack", "txack", "log", "location"])
def test_chirpstack_events_other_than_up_are_skipped(event: str) -> None:
    payload = b'{"deviceInfo": {"devEui": "0101010101010101"}, "devAddr": "00189440"}'
    decoded = adapter("chirpstack-v4", "chirpstack")(
        f"application/a/device/0101010101010101/event/{event}", payload, 0)
    assert (decoded.points, decoded.rejections, decoded.skipped) == ([], [], 1)


def test_chirpstack_protobuf_marshaler_gets_a_hint() -> None:
    decoded = adapter("chirpstack-v4", "cs")("application/a/device/d/event/up",
                                             b"\x0a\x24\x33\xff", 0)
    assert decoded.rejections[0].reason is Reason.BAD_ENCODING
    assert decoded.rejections[0].detail.endswith("(is the ChirpStack MQTT integration's "
                                                 "marshaler json?)")


@pytest.mark.parametrize(("topic", "payload"), [
    ("v3/a@ttn/devices/d1/join", b'{"end_device_ids": {"device_id": "d1"}, "join_accept": {}}'),
    ("v3/a@ttn/devices/d1/down/ack", b'{"end_device_ids": {"device_id": "d1"}}'),
    ("v3/a@ttn/devices/d1/up/normalized", b"{}"),
    ("v3/custom/topic", b'{"end_device_ids": {"device_id": "d1"}, "downlink_sent": {}}'),
])
def test_tts_notices_are_skipped(topic: str, payload: bytes) -> None:
    decoded = adapter("ttn-v3", "tts")(topic, payload, 0)
    assert (decoded.points, decoded.rejections, decoded.skipped) == ([], [], 1)
