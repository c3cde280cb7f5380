"""CayenneLPP (Cayenne Low Power Payload), the built-in codec for LoRaWAN devices.

The payload is a sequence of `channel (1 byte) | type (1 byte) | value (big-endian, fixed
size per type)`. Readings are named like The Things Stack's own CayenneLPP formatter does
(`<lowercase sensor constant>_<channel>`: `temperature_3`, `relative_humidity_2`,
`barometric_pressure_1`), so one `[sources.fields]` mapping serves a device whether TTS or
citypilot decodes it, and the built-in field table maps them (temperature_3 -> temperature)
without configuration. Values are scaled exactly (`0x0110 / 10` is 27.2, not TTS's float32
27.200000762939453). The extended types of the widely used Arduino library (voltage, current,
power, energy, ...) are decoded too; an unknown type or a truncated value is a `CodecError`,
since without the type's size nothing after it can be read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ingest.decode.codec import CodecError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Type:
    name: str
    size: int
    read: Callable[[bytes], Any]


def _scalar(name: str, size: int, scale: int, signed: bool) -> _Type:
    def read(raw: bytes) -> float | int:
        value = int.from_bytes(raw, "big", signed=signed)
        return value if scale == 1 else value / scale

    return _Type(name, size, read)


def _triple(name: str, scale: int) -> _Type:
    def read(raw: bytes) -> dict[str, float]:
        x, y, z = (int.from_bytes(raw[i:i + 2], "big", signed=True) / scale for i in (0, 2, 4))
        return {"x": x, "y": y, "z": z}

    return _Type(name, 6, read)


def _gps(raw: bytes) -> dict[str, float]:
    return {
        "latitude": int.from_bytes(raw[0:3], "big", signed=True) / 10_000,
        "longitude": int.from_bytes(raw[3:6], "big", signed=True) / 10_000,
        "altitude": int.from_bytes(raw[6:9], "big", signed=True) / 100,
    }


# Sizes and scales from the CayenneLPP reference and the extended types of ElectronicCats'
# CayenneLPP library.
TYPES: dict[int, _Type] = {
    0: _scalar("digital_input", 1, 1, False),
    1: _scalar("digital_output", 1, 1, False),
    2: _scalar("analog_input", 2, 100, True),
    3: _scalar("analog_output", 2, 100, True),
    100: _scalar("generic_sensor", 4, 1, False),
    101: _scalar("luminosity", 2, 1, False),
    102: _scalar("presence", 1, 1, False),
    103: _scalar("temperature", 2, 10, True),
    104: _scalar("relative_humidity", 1, 2, False),
    113: _triple("accelerometer", 1000),
    115: _scalar("barometric_pressure", 2, 10, False),
    116: _scalar("voltage", 2, 100, False),
    117: _scalar("current", 2, 1000, False),
    118: _scalar("frequency", 4, 1, False),
    120: _scalar("percentage", 1, 1, False),
    121: _scalar("altitude", 2, 1, True),
    125: _scalar("concentration", 2, 1, False),
    128: _scalar("power", 2, 1, False),
    130: _scalar("distance", 4, 1000, False),
    131: _scalar("energy", 4, 1000, False),
    132: _scalar("direction", 2, 1, False),
    133: _scalar("unixtime", 4, 1, False),
    134: _triple("gyrometer", 100),
    136: _Type("gps", 9, _gps),
    142: _scalar("switch", 1, 1, False),
}


def decode(payload: bytes, f_port: int = 0) -> dict[str, Any]:
    """Decode a CayenneLPP payload; CodecError naming the offset when it is not one."""
    if not payload:
        raise CodecError("empty payload")
    out: dict[str, Any] = {}
    pos = 0
    while pos < len(payload):
        if pos + 2 > len(payload):
            raise CodecError(f"offset {pos}: channel without a type byte")
        channel, type_id = payload[pos], payload[pos + 1]
        kind = TYPES.get(type_id)
        if kind is None:
            raise CodecError(f"offset {pos + 1}: unknown CayenneLPP type {type_id} "
                             f"(0x{type_id:02x}) on channel {channel}")
        raw = payload[pos + 2:pos + 2 + kind.size]
        if len(raw) < kind.size:
            raise CodecError(f"offset {pos + 2}: {kind.name} needs {kind.size} bytes, "
                             f"{len(raw)} left")
        name = f"{kind.name}_{channel}"
        if name in out:  # two readings of one sensor in one frame: neither may overwrite
            raise CodecError(f"offset {pos}: {name} appears twice")
        out[name] = kind.read(raw)
        pos += 2 + kind.size
    return out
