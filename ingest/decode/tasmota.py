"""Tasmota telemetry (`tele/{topic}/SENSOR`) and last will (`tele/{topic}/LWT`).

The device is Tasmota's `%topic%`: what remains of the MQTT topic without the prefix level
(`tele`, `stat`, `cmnd`) and the message type, so both the default FullTopic
`%prefix%/%topic%/` and `%topic%/%prefix%/` work; it is sanitised to the topic grammar.

A SENSOR message holds one object per attached sensor (`"BME280": {"Temperature": 21.7}`,
`"DS18B20-1": {...}`, `"ENERGY": {...}`). Several sensors may report the same quantity (an
SHT3X for air and a DS18B20 in water both report `Temperature`); so that they never overwrite
each other, each sensor is its own device `{topic}_{sensor}` (`garden_SHT3X`,
`garden_DS18B20-1`) — the same series every time, whatever else the board reports. A kind
glob such as `"*_SCD40" = "air_quality"` places them. Top-level numbers (rare) stay on
`{topic}`, as does the LWT status.

Units are the ones Tasmota states beside the readings — `TempUnit` (C/F, for every
temperature of the message), `PressureUnit` (hPa/mmHg/inHg), `SpeedUnit` — and are converted
through the unit registry without any mapping; a unit it cannot convert is an `unknown_unit`
dead letter.

`Time` is the device's local time without a zone (`2019-11-03T19:34:28`): it is placed in the
source's `timezone` (time_source "zoned"; in a repeated autumn hour the first occurrence, as
zoneinfo does). A `Time` with an offset (SetOption52), an `Epoch` (TimeFormat 1) or an epoch
`Time` (TimeFormat 2) is UTC-exact (time_source "device").

LWT `Online`/`Offline` becomes device_status `state` at the receive time. STATE, INFO*, RESULT,
STATUS* and every other message type carry no readings: skipped and counted.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from ingest.decode.adapter import Adapter, Reading, load_object, received, reject
from ingest.decode.fields import Offered, TimeSource
from ingest.model import Decoded, Reason

log = logging.getLogger(__name__)

_PREFIXES = ("tele", "stat", "cmnd")
# Tasmota's unit keys -> the registry metrics they apply to.
_UNIT_KEYS = {
    "TempUnit": ("temperature",),
    "PressureUnit": ("pressure",),
    "SpeedUnit": ("wind_speed", "speed"),
}
_NOT_READINGS = frozenset({"Time", "Epoch", *_UNIT_KEYS})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def split_topic(topic: str) -> tuple[str, str]:
    """(`%topic%`, message type) of a Tasmota MQTT topic."""
    levels = topic.split("/")
    kind = levels.pop() if len(levels) > 1 else ""
    for prefix in _PREFIXES:
        if prefix in levels:
            levels.remove(prefix)
            break
    return "/".join(levels), kind


class TasmotaDecoder(Adapter):
    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        device, kind = split_topic(topic)
        if not device:
            reject(out, Reason.BAD_TOPIC, f"topic {topic!r} names no Tasmota topic", payload)
            return
        if kind == "LWT":
            self._lwt(out, device, payload, received_ns)
        elif kind == "SENSOR":
            self._sensor(out, device, payload, received_ns)
        # any other message type (STATE, INFO1, RESULT, ...): skipped

    def _lwt(self, out: Decoded, device: str, payload: bytes, received_ns: int) -> None:
        state = payload.strip().decode("utf-8", errors="replace").lower()
        if state not in ("online", "offline"):
            reject(out, Reason.BAD_SHAPE, "LWT is neither Online nor Offline", payload)
            return
        reading = received(device, received_ns)
        reading.raw = payload
        reading.status = {"state": state}
        self.emit(out, reading, received_ns)

    def _sensor(self, out: Decoded, device: str, payload: bytes, received_ns: int) -> None:
        doc = load_object(out, payload, "a Tasmota SENSOR message")
        if doc is None:
            return
        try:
            ts, source = self._time(doc, received_ns)
        except ValueError as exc:
            reject(out, Reason.BAD_TIMESTAMP, str(exc), payload)
            return
        stated = _stated_units(doc)
        board = Reading(device, ts, source, stated_units=stated, raw=payload)
        for key, value in doc.items():
            if key in _NOT_READINGS:
                continue
            if isinstance(value, dict):
                sensor = Reading(f"{device}_{key}", ts, source, stated_units=stated,
                                 raw=payload, where=f"{key}: ")
                sensor.values = self._values(key, value)
                self.emit(out, sensor, received_ns)
            elif isinstance(value, list | str):
                self.drop(key)
            else:
                board.values.append(Offered.plain(key, value))
        if board.values:
            self.emit(out, board, received_ns)

    def _values(self, sensor: str, readings: dict[str, Any]) -> list[Offered]:
        values: list[Offered] = []
        for name, value in readings.items():
            if isinstance(value, dict | list | str):
                self.drop(f"{sensor}.{name}")  # e.g. a DS18B20's "Id", ENERGY's per-phase lists
                continue
            values.append(Offered.plain(name, value, sensor))
        return values

    def _time(self, doc: dict[str, Any], received_ns: int) -> tuple[int, TimeSource]:
        epoch = doc.get("Epoch", doc.get("Time"))
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            return epoch * 10**9, TimeSource.DEVICE  # TimeFormat 1 or 2: UTC seconds
        text = doc.get("Time")
        if text is None:
            return received_ns, TimeSource.RECEIVED
        if not isinstance(text, str):
            raise ValueError(f"Time {text!r} is not a timestamp")
        try:
            local = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"Time {text!r} is not ISO 8601") from None
        if local.tzinfo is not None:
            return _ns(local), TimeSource.DEVICE
        if self.config.timezone is None:
            raise ValueError(f"Time {text!r} has no zone and the source sets no timezone")
        return _ns(local.replace(tzinfo=self.config.timezone)), TimeSource.ZONED


def _stated_units(doc: dict[str, Any]) -> dict[str, str]:
    stated: dict[str, str] = {}
    for key, metrics in _UNIT_KEYS.items():
        unit = doc.get(key)
        if isinstance(unit, str):
            stated.update(dict.fromkeys(metrics, unit))
    return stated


def _ns(moment: datetime) -> int:
    """Exact integer nanoseconds (no float on the way: timedelta keeps whole microseconds)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000
