"""Sparkplug B payloads: protobuf bytes as typed values, and the one command a collector sends.

Why protobuf's generated code and not a Sparkplug library: a collector needs only the payload
codec; the host-side state (births, aliases, `seq`, `bdSeq`) has to live in citypilot's own
decode pipeline, in arrival order with everything else. The Python Sparkplug libraries are
whole edge/host runtimes with their own MQTT client instead: pysparkplug pins
`paho-mqtt<2` (citypilot runs paho 2.x, for manual acks), aiospb and mqtt-spb-wrapper bring
their own clients and sessions. So: the `sparkplug_b.proto` of Eclipse Tahu (the reference
implementation), compiled by protoc into `sparkplug_b_pb2.py`, checked in so that
`pip install -e .` needs only the `protobuf` runtime (see that file's header for how to
regenerate it).

This module is the typed boundary around that untyped generated code: `parse` turns bytes
into frozen `Payload`/`Metric` values (or raises `PayloadError`), `numeric` reads a metric's
number the way its datatype says, `rebirth_command` builds the NCMD `Node Control/Rebirth`
payload. Nothing else touches protobuf objects.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

# protobuf ships no type hints (types-protobuf would): this one exception class is all we use.
from google.protobuf.message import DecodeError  # type: ignore[import-untyped, unused-ignore]

from ingest.decode import sparkplug_b_pb2

log = logging.getLogger(__name__)

# Built at import time by protobuf's builder from the serialised descriptor: mypy cannot see it.
_PAYLOAD: Any = sparkplug_b_pb2.Payload  # type: ignore[attr-defined]

REBIRTH_METRIC = "Node Control/Rebirth"


class DataType(IntEnum):
    """Sparkplug B metric datatypes (the proto's `DataType` enum)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


# Signed integers travel as two's complement in the unsigned `int_value`/`long_value`: Tahu's
# Python writes them at the type's width (Int8 -5 -> 251), its Java at 32/64 bits
# (0xFFFFFFFB). Masking to the type's width and sign-extending reads both.
_SIGNED_BITS = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}
_UNSIGNED = frozenset({DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64})
NUMERIC = frozenset({*_SIGNED_BITS, *_UNSIGNED, DataType.FLOAT, DataType.DOUBLE,
                     DataType.BOOLEAN})
# The oneof fields whose content is a plain scalar we can hand on; dataset, template and
# extension values are counted by the decoder, never read.
_SCALARS = frozenset({"int_value", "long_value", "float_value", "double_value",
                      "boolean_value", "string_value", "bytes_value"})

Scalar = int | float | bool | str | bytes


class PayloadError(ValueError):
    """The bytes are not a Sparkplug B payload; the message says why."""


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric as sent. `value` is None when null or not a scalar (`field` says which)."""

    name: str | None
    alias: int | None
    timestamp_ms: int | None
    datatype: int | None
    historical: bool
    null: bool
    field: str  # the oneof member set: "double_value", "dataset_value", ... or "" for none
    value: Scalar | None


@dataclass(frozen=True, slots=True)
class Payload:
    timestamp_ms: int | None
    seq: int | None
    metrics: tuple[Metric, ...]

    def metric(self, name: str) -> Metric | None:
        for m in self.metrics:
            if m.name == name:
                return m
        return None


def parse(raw: bytes) -> Payload:
    """Decode a Sparkplug B `Payload`; PayloadError when the bytes are not one."""
    try:
        message = _PAYLOAD.FromString(raw)
        return Payload(
            timestamp_ms=message.timestamp if message.HasField("timestamp") else None,
            seq=message.seq if message.HasField("seq") else None,
            metrics=tuple(_metric(m) for m in message.metrics),
        )
    except DecodeError as exc:
        raise PayloadError(f"not a Sparkplug B payload (protobuf: {exc})") from None


def _metric(m: Any) -> Metric:
    field = m.WhichOneof("value") or ""
    value: Scalar | None = getattr(m, field) if field in _SCALARS else None
    return Metric(
        name=_text(m.name) if m.HasField("name") else None,
        alias=m.alias if m.HasField("alias") else None,
        timestamp_ms=m.timestamp if m.HasField("timestamp") else None,
        datatype=m.datatype if m.HasField("datatype") else None,
        historical=bool(m.is_historical),
        null=bool(m.is_null),
        field=field,
        value=None if m.is_null else value,
    )


def _text(value: str | bytes) -> str:
    # proto2 strings are not checked for UTF-8: the runtime hands invalid ones over as bytes.
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def type_name(datatype: int | None) -> str:
    """`DataSet`-style name of a datatype for counters and details ("unknown_42" if none)."""
    if datatype is None:
        return "untyped"
    try:
        return DataType(datatype).name.lower()
    except ValueError:
        return f"unknown_{datatype}"


def numeric(datatype: int, metric: Metric) -> float | bool | None:
    """The metric's number as its datatype defines it; None when it carries none.

    Booleans stay booleans (the field mapping stores them as 1.0/0.0, as for other formats).
    A value in a oneof member that does not fit the datatype (a string for a Float) is None.
    """
    value = metric.value
    if value is None or isinstance(value, str | bytes):
        return None
    if datatype == DataType.BOOLEAN:
        return value if isinstance(value, bool) else None
    if isinstance(value, bool):
        return None
    if datatype in (DataType.FLOAT, DataType.DOUBLE):
        return _shortest_float32(value) if metric.field == "float_value" else float(value)
    if not isinstance(value, int) or datatype not in NUMERIC:
        return None
    bits = _SIGNED_BITS.get(DataType(datatype))
    if bits is not None:
        value &= (1 << bits) - 1
        if value >= 1 << (bits - 1):
            value -= 1 << bits
        return float(value)
    return float(value) if datatype in _UNSIGNED else None


def _shortest_float32(value: float) -> float:
    """A 32-bit `float_value` as the shortest decimal that is the same float32: an edge node
    that sent 21.7 meant 21.7, not the 21.700000762939453 that widening it gives."""
    exact = struct.pack("<f", value)
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack("<f", candidate) == exact:
            return candidate
    return float(value)


def rebirth_command(now_ms: int) -> bytes:
    """The NCMD payload that asks an edge node to publish its births again."""
    message = _PAYLOAD(timestamp=now_ms)
    metric = message.metrics.add()
    metric.name = REBIRTH_METRIC
    metric.datatype = DataType.BOOLEAN
    metric.boolean_value = True
    data: bytes = message.SerializeToString()
    return data
