"""`[[sources]]` validation (one line naming the key), the decoder factory, unit conversion."""

from __future__ import annotations

from typing import Any

import pytest

from ingest import units
from ingest.decode.chirpstack import ChirpStackDecoder
from ingest.decode.lineprotocol import LineProtocolDecoder
from ingest.decode.native import NativeDecoder
from ingest.decode.sources import SourceConfigError, adhoc_source, decoder_for, load_sources
from ingest.decode.sparkplug import SparkplugDecoder
from ingest.decode.tasmota import TasmotaDecoder
from ingest.decode.ttn import TtnDecoder
from ingest.decode.zigbee2mqtt import Zigbee2MqttDecoder

BASE = {"name": "gw1", "format": "ttn-v3", "topic": "v3/+/devices/+/up", "pilot": "athens"}


def entry(**changes: Any) -> dict[str, Any]:
    out = {**BASE, **changes}
    return {k: v for k, v in out.items() if v is not None}


@pytest.mark.parametrize(("raw", "message"), [
    (entry(colour="red"), "sources[0] (gw1).colour: unknown key (known: name, format, topic, "
     "pilot, mqtt_url, timezone, kinds, fields, codec, device_key)"),
    (entry(pilot=None), "sources[0] (gw1).pilot: required key is missing"),
    (entry(format="lorawan"), "sources[0] (gw1).format: Input should be 'citypilot', 'ttn-v3', "
     "'chirpstack-v4', 'zigbee2mqtt', 'tasmota', 'influx-lp' or 'sparkplug-b'"),
    (entry(topic="v3/#/up"), "sources[0] (gw1).topic: 'v3/#/up': '#' must be the whole last "
     "level"),
    (entry(timezone="Europe/Atlantis"), "sources[0] (gw1).timezone: 'Europe/Atlantis' is not "
     "an IANA time zone (e.g. Europe/Athens)"),
    (entry(format="tasmota", topic="tele/#"), "sources[0] (gw1).timezone: required for format "
     'tasmota (its Time has no zone), e.g. timezone = "Europe/Athens"'),
    (entry(fields={"t": {"metric": "temperature", "unit": "hPa"}}),
     "sources[0] (gw1).fields.t: cannot convert 'hPa' to '°C' (the unit of temperature)"),
    (entry(fields={"t": {"metric": "temperature", "unit": "furlongs"}}),
     "sources[0] (gw1).fields.t: cannot convert 'furlongs' to '°C' (the unit of temperature)"),
    (entry(fields={"t": "Temp"}), "sources[0] (gw1).fields.t.metric: String should match "
     "pattern '^[a-z][a-z0-9_]{0,63}$'"),
    (entry(kinds={"*": "device_status"}), "sources[0] (gw1).kinds.*: kind 'device_status' is "
     "reserved"),
    (entry(codec="msgpack"), "sources[0] (gw1).codec: unknown codec 'msgpack' (known: "
     "cayenne-lpp)"),
    (entry(format="zigbee2mqtt", codec="cayenne-lpp"), "sources[0] (gw1).codec: only for "
     "LoRaWAN formats (ttn-v3, chirpstack-v4)"),
    (entry(device_key="name"), "sources[0] (gw1).device_key: 'name' is not one of device_id, "
     "dev_eui"),
    (entry(format="zigbee2mqtt", device_key="x"), "sources[0] (gw1).device_key: format "
     "zigbee2mqtt takes the device from its topic; drop device_key"),
    (entry(mqtt_url="http://broker"), "sources[0] (gw1).mqtt_url: 'http://broker' is not "
     "mqtt://host:port or mqtts://host:port"),
])
def test_a_bad_entry_is_one_line_naming_the_key(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(SourceConfigError) as err:
        load_sources([raw])
    assert str(err.value) == message


def test_duplicate_names_and_non_arrays() -> None:
    with pytest.raises(SourceConfigError, match=r"sources\[1\] \(gw1\)\.name: 'gw1' is used"):
        load_sources([entry(), entry()])
    with pytest.raises(SourceConfigError, match="expected an array of tables"):
        load_sources({"name": "x"})


@pytest.mark.parametrize(("fmt", "extra", "cls"), [
    ("citypilot", {}, NativeDecoder),
    ("ttn-v3", {"codec": "cayenne-lpp", "device_key": "dev_eui"}, TtnDecoder),
    ("chirpstack-v4", {"device_key": "deviceName"}, ChirpStackDecoder),
    ("zigbee2mqtt", {}, Zigbee2MqttDecoder),
    ("tasmota", {"timezone": "America/New_York"}, TasmotaDecoder),
    ("influx-lp", {"device_key": "source"}, LineProtocolDecoder),
    ("sparkplug-b", {}, SparkplugDecoder),
])
def test_decoder_for_each_format(fmt: str, extra: dict[str, Any], cls: type) -> None:
    (source,) = load_sources([entry(format=fmt, **extra)])
    assert isinstance(decoder_for(source), cls)


def test_mappings_reach_the_adapter() -> None:
    (source,) = load_sources([entry(kinds={"park-*": "parking"},
                                    fields={"t": "temperature",
                                            "tf": {"metric": "temperature", "unit": "F"}})])
    decoder = decoder_for(source)
    assert isinstance(decoder, TtnDecoder)
    assert decoder.config.kinds == (("park-*", "parking"),)
    assert decoder.config.gateway == "gw1"
    assert decoder.config.pilot == "athens"
    assert {k: (r.metric, r.unit) for k, r in decoder.config.fields.items()} == {
        "t": ("temperature", None), "tf": ("temperature", "F")}


def test_adhoc_source_for_the_check_command() -> None:
    assert adhoc_source("tasmota").timezone == "UTC"
    assert adhoc_source("influx-lp").name == "check"
    with pytest.raises(SourceConfigError, match=r"--format/--timezone\.format: "):
        adhoc_source("nope")


@pytest.mark.parametrize(("value", "src", "dst", "expected"), [
    (68.0, "°F", "°C", 20.0), (32.0, "F", "°C", 0.0), (293.15, "K", "°C", 20.0),
    (29.92, "inHg", "hPa", 1013.2075), (760.0, "mmHg", "hPa", 1013.2501),
    (101325.0, "Pa", "hPa", 1013.25), (87.0, "%", "1", 0.87), (2985.0, "mV", "V", 2.985),
    (1.5, "kWh", "Wh", 1500.0), (36.0, "km/h", "m/s", 10.0), (20.0, "°C", "°F", 68.0),
])
def test_unit_conversion(value: float, src: str, dst: str, expected: float) -> None:
    assert units.convert(value, src, dst) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("src", "dst"), [("°F", "hPa"), ("furlong", "m"), ("°C", "parsec")])
def test_impossible_conversions_say_why(src: str, dst: str) -> None:
    with pytest.raises(units.UnitError):
        units.convert(1.0, src, dst)
    assert not units.can_convert(src, dst)
