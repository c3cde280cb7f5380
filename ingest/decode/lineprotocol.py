"""InfluxDB line protocol as a source format (e.g. Telegraf's MQTT output), parsed here.

Not to be confused with `ingest/stores/lineprotocol.py`, which *encodes* points for InfluxDB.

Grammar (InfluxDB's line protocol reference), one point per `\\n`-separated line:
`measurement[,tag=value...] field=value[,field=value...] [timestamp]` where
- measurement names escape `,` and space with `\\`; tag keys, tag values and field keys also
  escape `=`; any other backslash is literal;
- field values are floats (`21.4`, `-1e3`), signed integers `123i` (int64), unsigned `123u`
  (uint64), booleans (`t`, `T`, `true`, `True`, `TRUE` and the `f` forms) and double-quoted
  strings that escape `"` and `\\`;
- the timestamp is integer nanoseconds (the precision Telegraf's MQTT output sends); lines
  starting with `#` and blank lines are ignored. Newlines never occur inside values.
A message may hold one line (`layout = "non-batch"`) or many (`batch`); each line is judged
alone, so one bad line is a dead letter of its own while its neighbours are stored.

Mapping: the device is the tag named by the source's `device_key` (default `host`, which
Telegraf adds to every metric), sanitised; the kind is the first matching kind glob, else the
measurement name sanitised to `[a-z][a-z0-9_]*`; every numeric field is a reading (integers
become floats: DESIGN.md stores floats; above 2**53 that rounds), booleans are 1.0/0.0, and
string fields are not stored (counted in `dropped_fields`). Other tags are not stored: the
stored shape allows only pilot, gateway and device as tags. A line's own timestamp is its
point's (time_source "device", kept to the nanosecond as an integer); without one, the
receive time ("received").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from ingest.decode.adapter import Adapter, Reading, reject
from ingest.decode.fields import Offered, TimeSource, normalise
from ingest.model import NAME_PATTERN, RESERVED_KINDS, Decoded, Reason

log = logging.getLogger(__name__)

DEFAULT_DEVICE_TAG = "host"
FieldValue = float | int | bool | str
_FLOAT = re.compile(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_INT = re.compile(r"-?\d+")
_UINT = re.compile(r"\d+")
_TRUE = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE = frozenset({"f", "F", "false", "False", "FALSE"})
_NAME = re.compile(NAME_PATTERN)
_INT64 = 2**63
_UINT64 = 2**64


class LineError(ValueError):
    """A line that is not line protocol; the message names the column."""


@dataclass(slots=True)
class Line:
    measurement: str
    tags: dict[str, str] = field(default_factory=dict)
    fields: dict[str, FieldValue] = field(default_factory=dict)
    ts: int | None = None


class _Scanner:
    """A cursor over one line; each method consumes one element of the grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, what: str) -> LineError:
        return LineError(f"column {self.pos + 1}: {what}")

    def at(self, chars: str) -> bool:
        return self.pos < len(self.text) and self.text[self.pos] in chars

    def token(self, stops: str, escapable: str, what: str) -> str:
        """Read up to an unescaped char of `stops`; `\\x` for x in `escapable` is x."""
        out: list[str] = []
        text = self.text
        while self.pos < len(text) and text[self.pos] not in stops:
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in escapable:
                out.append(text[self.pos + 1])
                self.pos += 2
                continue
            out.append(ch)
            self.pos += 1
        if not out:
            raise self.error(f"empty {what}")
        return "".join(out)

    def expect(self, ch: str, what: str) -> None:
        if not self.at(ch):
            raise self.error(f"expected {what}")
        self.pos += 1

    def spaces(self) -> bool:
        start = self.pos
        while self.at(" \t"):
            self.pos += 1
        return self.pos > start

    def string(self) -> str:
        self.pos += 1  # the opening quote
        out: list[str] = []
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch == "\\" and self.pos + 1 < len(text) and text[self.pos + 1] in '"\\':
                out.append(text[self.pos + 1])
                self.pos += 2
            elif ch == '"':
                self.pos += 1
                return "".join(out)
            else:
                out.append(ch)
                self.pos += 1
        raise self.error("unterminated string")


def parse_line(text: str) -> Line:
    """Parse one line of line protocol; LineError naming the column when it is not one."""
    scan = _Scanner(text)
    if scan.at("#"):
        raise scan.error("a comment is not a point")
    line = Line(scan.token(", \t", ", ", "measurement"))
    while scan.at(","):
        scan.pos += 1
        key = scan.token("=, \t", ",= ", "tag key")
        scan.expect("=", "'=' after a tag key")
        if key in line.tags:
            raise scan.error(f"tag {key!r} repeated")
        line.tags[key] = scan.token(", \t", ",= ", "tag value")
    if not scan.spaces():
        raise scan.error("expected a space before the fields")
    while True:
        key = scan.token("=, \t", ",= ", "field key")
        scan.expect("=", "'=' after a field key")
        if key in line.fields:
            raise scan.error(f"field {key!r} repeated")
        line.fields[key] = _field_value(scan)
        if not scan.at(","):
            break
        scan.pos += 1
    if scan.spaces() and scan.pos < len(text):
        start = scan.pos
        raw_ts = scan.token(" \t", "", "timestamp")
        if not _is_int(raw_ts, signed=True):
            scan.pos = start
            raise scan.error(f"timestamp {raw_ts!r} is not an int64 of nanoseconds")
        line.ts = int(raw_ts)
        scan.spaces()
    if scan.pos < len(text):
        raise scan.error(f"unexpected {text[scan.pos]!r}")
    return line


def _field_value(scan: _Scanner) -> FieldValue:
    if scan.at('"'):
        return scan.string()
    start = scan.pos
    raw = scan.token(", \t", "", "field value")
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if raw[-1] == "i" and _is_int(raw[:-1], signed=True):
        return int(raw[:-1])
    if raw[-1] == "u" and _is_int(raw[:-1], signed=False):
        return int(raw[:-1])
    if _FLOAT.fullmatch(raw):
        return float(raw)  # finite: the grammar has no NaN/Inf and 1e999 -> inf is refused later
    scan.pos = start
    raise scan.error(f"field value {raw[:40]!r} is not a float, integer, boolean or string")


def _is_int(raw: str, signed: bool) -> bool:
    """An int64 (or uint64) literal; the length check keeps int() off 5,000-digit strings."""
    if len(raw) > 21 or not (_INT if signed else _UINT).fullmatch(raw):
        return False
    value = int(raw)
    return -_INT64 <= value < _INT64 if signed else value < _UINT64


def kind_name(measurement: str) -> str | None:
    """A measurement sanitised to a kind name, or None when nothing usable is left."""
    name = normalise(measurement)[:64]
    if name and not name[0].isalpha():
        name = f"m_{name}"[:64]
    return name if _NAME.fullmatch(name) else None


class LineProtocolDecoder(Adapter):
    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            reject(out, Reason.BAD_ENCODING, str(exc), payload)
            return
        lines = text.split("\n")
        for number, raw in enumerate(lines, start=1):
            stripped = raw.strip(" \t\r")
            if not stripped or stripped.startswith("#"):
                continue
            where = f"line {number}: " if len(lines) > 1 else ""
            self._line(out, stripped, where, received_ns)

    def _line(self, out: Decoded, text: str, where: str, received_ns: int) -> None:
        raw = text.encode()
        try:
            line = parse_line(text)
        except LineError as exc:
            reject(out, Reason.UNDECODABLE, f"{where}{exc}", raw)
            return
        tag = self.config.device_key or DEFAULT_DEVICE_TAG
        device = line.tags.get(tag)
        if device is None:
            reject(out, Reason.BAD_SHAPE, f"{where}no tag {tag!r} to take the device from "
                   "(name the device tag with the source's device_key)", raw)
            return
        kind = kind_name(line.measurement)
        if kind is None or kind in RESERVED_KINDS:
            reject(out, Reason.BAD_NAME, f"{where}measurement {line.measurement!r} gives no "
                   "usable kind (map the device to a kind)", raw)
            return
        if line.ts is None:
            reading = Reading(device, received_ns, TimeSource.RECEIVED)
        else:
            reading = Reading(device, line.ts, TimeSource.DEVICE)
        reading.kind, reading.raw, reading.where = kind, raw, where
        reading.values = [Offered.plain(key, value, line.measurement)
                          for key, value in line.fields.items()]
        self.emit(out, reading, received_ns)
