"""The gateway-format adapters against real payload samples and their known traps.

The samples are the ones in shared/payloads (copied byte for byte into tests/data/payloads so
that a clean clone has them); every expected point is written out by hand: tags, measurement,
each field value, the timestamp in nanoseconds and which clock it came from.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
import pytest

from ingest.decode import Limits
from ingest.decode.adapter import Adapter
from ingest.decode.preview import describe
from ingest.model import Decoded, Point, Reason
from ingest.sources import Source, decoder_for

DATA = Path(__file__).parents[1] / "data" / "payloads"
PILOT = "athens"


def adapter(fmt: str, gateway: str, topic: str = "#", **extra: Any) -> Adapter:
    source = Source(name=gateway, format=fmt, topic=topic, pilot=PILOT, **extra)
    decoder = decoder_for(source, Limits())
    assert isinstance(decoder, Adapter)
    return decoder


def point(measurement: str, gateway: str, device: str, ts: int, **fields: Any) -> Point:
    tags = (("pilot", PILOT), ("gateway", gateway), ("device", device))
    return Point(measurement, tags, fields, ts)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def rejections(decoded: Decoded) -> list[tuple[Reason, str]]:
    return [(r.reason, r.detail) for r in decoded.rejections]


# --- every sample ------------------------------------------------------------------------

SAMPLES: list[tuple[str, str, str, dict[str, Any], int, list[Point], list[Reason]]] = [
    # (sample, format, topic, source options, received_ns, points, dead-letter reasons)
    ("ttn-v3-uplink.json", "ttn-v3", "v3/thingsboard-integration@ttn/devices/thermostat1/up",
     {}, 1_597_140_513_000_000_000,
     [point("sensor", "tts", "thermostat1", 1_597_140_511_505_981_496,
            temperature=2.0, ingest_delay_s=1.494018504, time_source="network")],
     []),
    ("ttn-v3-uplink-bosch-parking-nodecoder.json", "ttn-v3",
     "v3/application-tts-name@ttn/devices/eui-1000000000000001/up",
     {}, 1_684_474_416_000_000_000,
     [point("device_status", "tts", "eui-1000000000000001", 1_684_474_415_641_841_782,
            rssi=-35.0, snr=13.2, time_source="network")],
     [Reason.NO_CODEC]),
    ("ttn-v3-uplink-tts-docs-malformed.txt", "ttn-v3", "v3/app1@tenant1/devices/dev1/up",
     {}, 1_581_520_547_000_000_000, [], [Reason.BAD_JSON]),
    ("chirpstack-v4-up.json", "chirpstack-v4",
     "application/17c82e96-be03-4f38-aef3-f83d48582d97/device/0101010101010101/event/up",
     {}, 1_658_136_856_000_000_000,
     [point("device_status", "chirpstack", "0101010101010101", 1_658_136_855_775_023_242,
            rssi=-36.0, snr=10.5, time_source="network")],
     [Reason.NO_CODEC]),
    ("chirpstack-v4-up-bosch-parking.json", "chirpstack-v4",
     "application/ca739e26-7b67-4f14-b69e-d568c22a5a75/device/1000000000000001/event/up",
     {"device_key": "deviceName"}, 1_684_741_626_000_000_000,
     [point("device_status", "chirpstack", "Device_name", 1_684_741_625_404_859_000,
            rssi=-35.0, snr=11.5, time_source="network")],
     [Reason.NO_CODEC]),
    ("zigbee2mqtt-wsdcgq01lm.json", "zigbee2mqtt", "zigbee2mqtt/living room/th sensor",
     {}, 1_700_000_000_123_456_789,
     [point("sensor", "z2m", "living_room_th_sensor", 1_700_000_000_123_456_789,
            temperature=27.34, humidity=44.72, ingest_delay_s=0.0, time_source="received")],
     []),
    ("zigbee2mqtt-wsdcgq11lm.json", "zigbee2mqtt", "zigbee2mqtt/garden/weather",
     {}, 1_700_000_000_000_000_000,
     [point("sensor", "z2m", "garden_weather", 1_700_000_000_000_000_000,
            voltage=2.985, temperature=23.5, humidity=46.08, pressure=915.5,
            ingest_delay_s=0.0, time_source="received"),
      point("device_status", "z2m", "garden_weather", 1_700_000_000_000_000_000,
            battery=0.91, linkquality=10.0, time_source="received")],
     []),
    ("tasmota-tele-sensor-bme280.json", "tasmota", "tele/tasmota_9CF9D1/SENSOR",
     {"timezone": "Europe/Athens"}, 1_572_802_470_000_000_000,
     [point("sensor", "tasmota", "tasmota_9CF9D1_BME280", 1_572_802_468_000_000_000,
            temperature=21.7, humidity=66.6, pressure=988.6, ingest_delay_s=2.0,
            time_source="zoned")],
     []),
    ("tasmota-tele-sensor-scd40.json", "tasmota", "tele/tasmota/SENSOR",
     {"timezone": "Europe/Athens", "kinds": {"*_SCD40": "air_quality"}},
     1_685_293_468_500_000_000,
     [point("air_quality", "tasmota", "tasmota_SCD40", 1_685_293_467_000_000_000,
            co2=618.0, e_co2=623.0, temperature=23.8, humidity=61.1, dew_point=15.8,
            ingest_delay_s=1.5, time_source="zoned")],
     []),
    ("telegraf-mqtt-influx.lp", "influx-lp", "telegraf/plc-gw/modbus",
     {"device_key": "source"}, 1_676_522_982_250_000_000,
     [point("modbus", "telegraf", "device_1", 1_676_522_982_000_000_000,
            temperature=21.4, working_hours=123.0, supplied=1.0, ingest_delay_s=0.25,
            time_source="device"),
      point("modbus", "telegraf", "device_2", 1_676_522_982_000_000_000,
            temperature=25.0, supplied=1.0, ingest_delay_s=0.25, time_source="device")],
     []),
    ("telegraf-mqtt-influx.lp", "influx-lp", "telegraf/plc-gw/modbus",
     {}, 1_676_522_982_250_000_000, [], [Reason.BAD_SHAPE, Reason.BAD_SHAPE]),
]
GATEWAYS = {"ttn-v3": "tts", "chirpstack-v4": "chirpstack", "zigbee2mqtt": "z2m",
            "tasmota": "tasmota", "influx-lp": "telegraf"}


@pytest.mark.parametrize(("name", "fmt", "topic", "options", "received_ns", "points", "reasons"),
                         SAMPLES, ids=[f"{s[0]}{'+' if s[3] else ''}" for s in SAMPLES])
def test_sample_decodes_to_the_written_out_points(
        name: str, fmt: str, topic: str, options: dict[str, Any], received_ns: int,
        points: list[Point], reasons: list[Reason]) -> None:
    filter_ = "zigbee2mqtt/#" if fmt == "zigbee2mqtt" else "#"
    decoded = adapter(fmt, GATEWAYS[fmt], filter_, **options)(topic, sample(name), received_ns)
    assert decoded.points == points
    assert [r.reason for r in decoded.rejections] == reasons
    assert decoded.skipped == 0


def test_every_sample_is_covered_and_the_copies_are_verbatim() -> None:
    """The copies match the SHA-256 sums taken from ../shared/payloads when they were copied
    (a clean clone has no ../shared to compare with, so the sums travel with the copies)."""
    import hashlib

    covered = {s[0] for s in SAMPLES}
    on_disk = {p.name for p in DATA.iterdir()} - {"README.md", "sparkplug-b.md", "SHA256SUMS"}
    assert covered == on_disk
    sums = dict(reversed(line.split()) for line in (DATA / "SHA256SUMS").read_text().splitlines())
    assert set(sums) == on_disk | {"README.md", "sparkplug-b.md"}
    for name, digest in sums.items():
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


def test_dead_letter_details_are_precise() -> None:
    tts = adapter("ttn-v3", "tts")
    malformed = tts("v3/a@t/devices/dev1/up", sample("ttn-v3-uplink-tts-docs-malformed.txt"), 0)
    assert rejections(malformed) == [
        (Reason.BAD_JSON, "unexpected character, expected ',' or '}': line 79 column 5 "
                          "(char 2017)")]
    assert malformed.rejections[0].payload == sample("ttn-v3-uplink-tts-docs-malformed.txt")
    raw = tts("v3/a@t/devices/x/up", sample("ttn-v3-uplink-bosch-parking-nodecoder.json"), 0)
    assert "source sets no codec" in raw.rejections[0].detail
    lp = adapter("influx-lp", "telegraf")("t", sample("telegraf-mqtt-influx.lp"), 0)
    assert lp.rejections[1].detail.startswith("line 2: no tag 'host' to take the device from")
    assert lp.rejections[1].payload == sample("telegraf-mqtt-influx.lp").splitlines()[1]


# --- LoRaWAN: codecs, skipped events, mappings ------------------------------------------------

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


# --- Zigbee2MQTT --------------------------------------------------------------------------

@pytest.mark.parametrize(("topic", "payload"), [
    ("zigbee2mqtt/bridge/state", b'{"state":"online"}'),
    ("zigbee2mqtt/bridge/state", b"online"),
    ("zigbee2mqtt/bridge/info", b'{"version":"1.35.0","coordinator":{"type":"zStack3x0"}}'),
    ("zigbee2mqtt/bridge/devices", b'[{"ieee_address":"0x00158d0001e4f5a2"}]'),
    ("zigbee2mqtt/bridge/logging", b'{"level":"info","message":"hello"}'),
    ("zigbee2mqtt/kitchen/lamp/set", b'{"state":"ON"}'),
    ("zigbee2mqtt/kitchen/lamp", b'{"state":"ON","action":"single"}'),
])
def test_z2m_messages_without_readings_are_skipped(topic: str, payload: bytes) -> None:
    decoded = adapter("zigbee2mqtt", "z2m", "zigbee2mqtt/#")(topic, payload, 0)
    assert (decoded.points, decoded.rejections, decoded.skipped) == ([], [], 1)


@pytest.mark.parametrize(("payload", "state"), [
    (b"online", "online"), (b"offline", "offline"),
    (b'{"state":"online"}', "online"), (b'{"state": "offline"}', "offline"),
])
def test_z2m_availability_both_forms(payload: bytes, state: str) -> None:
    z2m = adapter("zigbee2mqtt", "z2m", "zigbee2mqtt/#")
    decoded = z2m("zigbee2mqtt/garden/soil probe/availability", payload,
                  1_700_000_000_000_000_000)
    assert decoded.points == [point("device_status", "z2m", "garden_soil_probe",
                                    1_700_000_000_000_000_000, state=state,
                                    time_source="received")]


def test_z2m_friendly_name_with_slashes_never_reaches_a_tag_unescaped() -> None:
    z2m = adapter("zigbee2mqtt", "z2m", "home/zigbee/#")
    decoded = z2m("home/zigbee/floor 1/room,2/th=1", b'{"temperature": 20.5}',
                  1_700_000_000 * 10**9)
    assert [p.tag("device") for p in decoded.points] == ["floor_1_room_2_th_1"]


def test_z2m_last_seen_is_the_bridge_clock() -> None:
    payload = b'{"temperature": 19.0, "last_seen": "2023-11-14T22:13:19.250Z"}'
    decoded = adapter("zigbee2mqtt", "z2m", "zigbee2mqtt/#")("zigbee2mqtt/t1", payload,
                                                             1_700_000_000_000_000_000)
    assert decoded.points == [point("sensor", "z2m", "t1", 1_699_999_999_250_000_000,
                                    temperature=19.0, ingest_delay_s=0.75,
                                    time_source="network")]


def test_z2m_out_of_range_is_rejected_like_native() -> None:
    decoded = adapter("zigbee2mqtt", "z2m", "zigbee2mqtt/#")(
        "zigbee2mqtt/t1", b'{"humidity": 150, "linkquality": 99}', 1_700_000_000 * 10**9)
    assert rejections(decoded) == [(Reason.OUT_OF_RANGE, "humidity=150.0 outside [0, 100] %")]
    assert decoded.points == []  # all-or-nothing per reading, like a native telemetry element


# --- Tasmota --------------------------------------------------------------------------------

def tasmota() -> Adapter:
    return adapter("tasmota", "tasmota", "tele/#", timezone="Europe/Athens")


def test_tasmota_two_sensors_reporting_temperature_never_overwrite() -> None:
    payload = (b'{"Time":"2024-01-15T10:00:00","SHT3X":{"Temperature":21.3,"Humidity":50.1,'
               b'"DewPoint":10.6},"DS18B20":{"Id":"0316A8D2C6FF","Temperature":12.5},'
               b'"TempUnit":"C"}')
    decoded = tasmota()("tele/pond/SENSOR", payload, 1_705_305_601_000_000_000)
    ts = 1_705_305_600_000_000_000  # 10:00 EET = 08:00 UTC
    assert decoded.points == [
        point("sensor", "tasmota", "pond_SHT3X", ts, temperature=21.3, humidity=50.1,
              dew_point=10.6, ingest_delay_s=1.0, time_source="zoned"),
        point("sensor", "tasmota", "pond_DS18B20", ts, temperature=12.5, ingest_delay_s=1.0,
              time_source="zoned"),
    ]


def test_tasmota_stated_units_are_honoured_without_mapping() -> None:
    payload = (b'{"Time":"2024-07-01T12:00:00","BME280":{"Temperature":70.0,"Humidity":40,'
               b'"Pressure":29.2},"PressureUnit":"inHg","TempUnit":"F"}')
    decoded = tasmota()("tele/roof/SENSOR", payload, 1_719_824_400_000_000_000)
    assert decoded.points == [point(
        "sensor", "tasmota", "roof_BME280", 1_719_824_400_000_000_000,  # 12:00 EEST
        temperature=pytest.approx(21.1111111111), humidity=40.0,
        pressure=pytest.approx(988.8254906), ingest_delay_s=0.0, time_source="zoned")]


def test_tasmota_mmhg() -> None:
    payload = b'{"BMP280":{"Pressure":741.5},"PressureUnit":"mmHg"}'
    decoded = tasmota()("tele/roof/SENSOR", payload, 1_719_824_400_000_000_000)
    assert decoded.points[0].fields["pressure"] == pytest.approx(988.5855027)
    assert decoded.points[0].fields["time_source"] == "received"  # no Time at all


def test_tasmota_unknown_unit_is_a_dead_letter() -> None:
    payload = b'{"Time":"2024-07-01T12:00:00","BME280":{"Temperature":300},"TempUnit":"X"}'
    decoded = tasmota()("tele/roof/SENSOR", payload, 1_719_824_400_000_000_000)
    assert rejections(decoded) == [(Reason.UNKNOWN_UNIT, "BME280: Temperature: unknown unit 'X'")]


@pytest.mark.parametrize(("payload", "state"), [(b"Online", "online"), (b"Offline", "offline")])
def test_tasmota_lwt_drives_online_offline(payload: bytes, state: str) -> None:
    decoded = tasmota()("tele/pond/LWT", payload, 1_700_000_000_000_000_000)
    assert decoded.points == [point("device_status", "tasmota", "pond",
                                    1_700_000_000_000_000_000, state=state,
                                    time_source="received")]


@pytest.mark.parametrize("topic", ["tele/pond/STATE", "tele/pond/INFO1", "stat/pond/RESULT",
                                   "stat/pond/STATUS8"])
def test_tasmota_state_info_result_are_skipped(topic: str) -> None:
    payload = (b'{"Time":"2024-02-24T22:20:38","Uptime":"0T00:10:11","POWER":"OFF",'
               b'"Wifi":{"AP":1,"RSSI":44,"Signal":-78}}')
    decoded = tasmota()(topic, payload, 0)
    assert (decoded.points, decoded.rejections, decoded.skipped) == ([], [], 1)


def test_tasmota_custom_full_topic_and_epoch_time() -> None:
    payload = b'{"Time":"2024-01-15T10:00:00","Epoch":1705305600,"SI7021":{"Humidity":45}}'
    decoded = tasmota()("attic/tele/SENSOR", payload, 1_705_305_600_000_000_000)
    assert decoded.points == [point("sensor", "tasmota", "attic_SI7021",
                                    1_705_305_600_000_000_000, humidity=45.0,
                                    ingest_delay_s=0.0, time_source="device")]


# --- line protocol ------------------------------------------------------------------------

def lp(**options: Any) -> Adapter:
    return adapter("influx-lp", "telegraf", "telegraf/#", **options)


def test_line_protocol_batch_with_one_bad_line() -> None:
    payload = (b"weather,host=st1 temperature=21.5 1700000000000000000\n"
               b"weather,host=st2 temperature=21.5,humidity= 1700000000000000000\n"
               b"# a comment\n\n"
               b"weather,host=st3 humidity=55i 1700000000000000000\n")
    decoded = lp()("telegraf/st/weather", payload, 1_700_000_001_000_000_000)
    assert [p.tag("device") for p in decoded.points] == ["st1", "st3"]
    assert rejections(decoded) == [(Reason.UNDECODABLE, "line 2: column 44: empty field value")]
    assert decoded.rejections[0].payload == (b"weather,host=st2 temperature=21.5,humidity= "
                                             b"1700000000000000000")


def test_line_protocol_escapes_types_and_nanoseconds() -> None:
    payload = (rb'air\ quality,host=kiosk\,7,site=a\=b pm2.5=12.5,no2=31i,count=7u,'
               rb'ok=T,bad=false,note="say \"hi\" \\ bye",co2=4.2e2 1700000000123456789')
    adapter_ = lp()
    decoded = adapter_("telegraf/kiosk/air", payload, 1_700_000_000_623_456_789)
    assert decoded.points == [point(
        "air_quality", "telegraf", "kiosk_7", 1_700_000_000_123_456_789,
        pm25=12.5, no2=31.0, count=7.0, ok=1.0, bad=0.0, co2=420.0,
        ingest_delay_s=0.5, time_source="device")]
    assert adapter_.dropped_fields == {"note": 1}  # strings are counted, not stored


def test_line_protocol_without_timestamp_takes_the_receive_time() -> None:
    decoded = lp()("telegraf/h/cpu", b"cpu,host=h usage_idle=99.5", 1_700_000_000_000_000_001)
    assert decoded.points == [point("cpu", "telegraf", "h", 1_700_000_000_000_000_001,
                                    usage_idle=99.5, ingest_delay_s=0.0,
                                    time_source="received")]


@pytest.mark.parametrize(("line", "reason"), [
    (b"event,host=h value=1 1700000000000000000", Reason.BAD_NAME),
    (b"m,host=h x=1 99999999999999999999", Reason.UNDECODABLE),
    (b"m,host=h x=-1u", Reason.UNDECODABLE),
    (b"m,host=h x=9223372036854775808i", Reason.UNDECODABLE),
    (b'm,host=h x="unterminated', Reason.UNDECODABLE),
    (b"m,host=h x=1,x=2", Reason.UNDECODABLE),
    (b"m,host=h,host=i x=1", Reason.UNDECODABLE),
    (b"m,host=h x=1 17 18", Reason.UNDECODABLE),
    (b"m,location=x x=1", Reason.BAD_SHAPE),
    (b"m,host=h x=1e999", Reason.NOT_FINITE),
    (b"m,host=h x=1 946684799999999999", Reason.BAD_TIMESTAMP),
    (b"m,host=h x=1 1800000000000000000", Reason.FUTURE_TIMESTAMP),
    (b"m,host=h", Reason.UNDECODABLE),
    (b"\xff\xfe", Reason.BAD_ENCODING),
])
def test_line_protocol_bad_lines(line: bytes, reason: Reason) -> None:
    decoded = lp()("telegraf/h/m", line, 1_700_000_000_000_000_000)
    assert [r.reason for r in decoded.rejections] == [reason]


# --- mappings, configuration, preview -----------------------------------------------------

def test_explicit_mappings_that_collide_are_refused() -> None:
    z2m = adapter("zigbee2mqtt", "z2m", "zigbee2mqtt/#",
                  fields={"temp_a": "temperature", "temp_b": "temperature"})
    decoded = z2m("zigbee2mqtt/t", b'{"temp_a": 20, "temp_b": 21}', 1_700_000_000 * 10**9)
    assert rejections(decoded) == [(Reason.BAD_SHAPE, "fields 'temp_a', 'temp_b' are all mapped "
                                    "to 'temperature'; map them to distinct metrics in "
                                    "[sources.fields]")]


def test_sources_check_preview_lines() -> None:
    decoder = adapter("ttn-v3", "tts")
    lines = describe(decoder("v3/a@ttn/devices/x/up",
                             sample("ttn-v3-uplink-bosch-parking-nodecoder.json"),
                             1_684_474_416_000_000_000))
    assert lines == [
        "device_status,pilot=athens,gateway=tts,device=eui-1000000000000001 rssi=-35.0,"
        'snr=13.2,time_source="network" 1684474415641841782  (2023-05-19T05:33:35.641841782Z)',
        "dead letter  reason=no_codec  uplink carries only raw bytes (no decoder on the network "
        'server) and the source sets no codec (e.g. codec = "cayenne-lpp")',
    ]


def test_too_large_and_the_backstop(monkeypatch: pytest.MonkeyPatch) -> None:
    z2m = adapter("zigbee2mqtt", "z2m", "zigbee2mqtt/#")
    big = z2m("zigbee2mqtt/t", b" " * (Limits().max_payload_bytes + 1), 0)
    assert [r.reason for r in big.rejections] == [Reason.TOO_LARGE]

    def boom(*_: Any) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(z2m, "decode", boom)
    decoded = z2m("zigbee2mqtt/t", b"{}", 0)
    assert rejections(decoded) == [(Reason.UNDECODABLE, "internal error: RuntimeError: bug")]


def test_zoneless_tasmota_time_without_a_timezone_is_a_bad_timestamp() -> None:
    from ingest.decode.adapter import AdapterConfig
    from ingest.decode.tasmota import TasmotaDecoder

    decoder = TasmotaDecoder(AdapterConfig(pilot=PILOT, gateway="tasmota"))
    decoded = decoder("tele/pond/SENSOR", sample("tasmota-tele-sensor-bme280.json"), 0)
    assert rejections(decoded) == [(Reason.BAD_TIMESTAMP, "Time '2019-11-03T19:34:28' has no "
                                    "zone and the source sets no timezone")]
