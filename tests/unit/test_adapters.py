"""The gateway-format adapters against real payload samples and their known traps.

The samples are the ones in shared/payloads (copied byte for byte into tests/data/payloads so
that a clean clone has them); every expected point is written out by hand: tags, measurement,
each field value, the timestamp in nanoseconds and which clock it came from.
"""

from __future__ import annotations

from typing import Any

import pytest

from ingest.decode import Limits
from ingest.decode.preview import describe
from ingest.model import Point, Reason
from tests.adapters import DATA, adapter, point, rejections, sample

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
