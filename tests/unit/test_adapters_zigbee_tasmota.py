"""The Zigbee2MQTT and Tasmota adapters: skipped messages, availability, clocks, units."""

from __future__ import annotations

import pytest

from ingest.decode.adapter import Adapter
from ingest.model import Reason
from tests.adapters import PILOT, adapter, point, rejections, sample

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




def test_zoneless_tasmota_time_without_a_timezone_is_a_bad_timestamp() -> None:
    from ingest.decode.adapter import AdapterConfig
    from ingest.decode.tasmota import TasmotaDecoder

    decoder = TasmotaDecoder(AdapterConfig(pilot=PILOT, gateway="tasmota"))
    decoded = decoder("tele/pond/SENSOR", sample("tasmota-tele-sensor-bme280.json"), 0)
    assert rejections(decoded) == [(Reason.BAD_TIMESTAMP, "Time '2019-11-03T19:34:28' has no "
                                    "zone and the source sets no timezone")]
