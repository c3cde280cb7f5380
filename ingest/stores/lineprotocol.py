"""Encode `Point`s as InfluxDB line protocol (precision ns), refusing what cannot round-trip.

Hand-written on purpose. The maintained encoders on PyPI target other servers or escape
lossily: influxdb-client's `Point` (for `/api/v2/write`) turns a newline in a tag into the two
characters `\\n`, which InfluxDB 1.x stores verbatim, drops empty tags and non-finite floats
without a word, writes `1.0` as `1`, and only warns about a measurement starting with `#`
(which InfluxDB then skips as a comment while answering 204); the 1.x client (`influxdb`) is
archived and has the same tag escaping. Telegraf's serializer trims trailing backslashes. A
hostile gateway must never make us write a different point than the one we were given, so
every refusal here is explicit.

Rules, checked against a real influxd 1.6 (`models/points.go` and `pkg/escape`):

- measurement: `,` and space are escaped; `=` and `"` are literal.
- tag keys, tag values, field keys: `,`, space and `=` are escaped.
- string field values: only `\\` and `"` are escaped; newline, CR, tab and NUL are written
  raw inside the quotes and read back unchanged.
- floats are always written as floats (`repr`, e.g. `1.0`), never with the `i` suffix, so a
  field never changes type; NaN and infinities are refused; ints are written as floats.

Refused with `UnrepresentablePoint` (a `ValueError`), because InfluxDB 1.x would store
something else or nothing at all:

- an empty measurement, tag key, tag value or field key, or a point without fields;
- a newline in any name (an escaped newline keeps its backslash);
- NUL or CR in any name (stored, but InfluxQL cannot quote them, so the name could never
  be queried: its scanner stops at NUL and turns CR into a newline, which ends a string);
- a backslash ending a name or standing before `,`, space, `=` or `"` (the parser's
  scanners disagree about such runs, so the name would be cut or unescaped differently);
- a measurement starting with `#` (a comment line), or a measurement or field key starting
  with a tab (skipped as leading whitespace);
- the tag or field key `time`, duplicate tag keys, series keys over 65,535 bytes;
- lone surrogates (not UTF-8) and timestamps outside InfluxDB's int64 range.
"""

from __future__ import annotations

import functools
import math

from ingest.model import TAG_KEYS, FieldValue, Point

MIN_TS_NS = -9_223_372_036_854_775_806  # InfluxDB's models.MinNanoTime
MAX_TS_NS = 9_223_372_036_854_775_806  # models.MaxNanoTime
MAX_KEY_BYTES = 65_535  # models.MaxKeyLength: measurement, tags and field key together

_MEASUREMENT = str.maketrans({",": "\\,", " ": "\\ "})
_KEY = str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="})
_STRING = str.maketrans({"\\": "\\\\", '"': '\\"'})
# After a backslash, these characters are read as an escape by some scanner of influxd.
_AFTER_BACKSLASH = frozenset(', ="')
_TAG_KEY_SET = frozenset(TAG_KEYS)


class UnrepresentablePoint(ValueError):
    """The point cannot be stored as given: it would be altered, dropped or unqueryable."""


def encode(point: Point) -> bytes:
    """One line of line protocol (no trailing newline), or UnrepresentablePoint."""
    key, key_bytes = _series_key(point.measurement, point.tags)
    fields = _fields(point.fields, key_bytes)
    ts = _timestamp(point.ts)
    try:
        return f"{key} {fields} {ts}".encode()
    except UnicodeEncodeError as exc:
        raise UnrepresentablePoint(f"point contains text that is not valid Unicode "
                                   f"(a lone surrogate): {exc.reason}") from None


# Names repeat on every point of a series: validating and escaping them once per distinct
# name is what keeps the encoder off the collector's profile. Refusals are never cached.
@functools.lru_cache(maxsize=1 << 16)
def _series_key(measurement: str, tags: tuple[tuple[str, str], ...]) -> tuple[str, int]:
    _check_name(measurement, "measurement")
    if measurement[0] in "#\t":
        raise UnrepresentablePoint(
            f"measurement {measurement!r} starts with {measurement[0]!r}, which "
            "InfluxDB reads as a comment or as whitespace")
    key = measurement.translate(_MEASUREMENT) + _tags(tags)
    return key, len(key.encode("utf-8", "surrogatepass"))


@functools.lru_cache(maxsize=1 << 14)
def _field_key(name: str) -> tuple[str, int]:
    _check_name(name, "field key")
    if name[0] == "\t" or name == "time":
        raise UnrepresentablePoint(f"field key {name!r} would be dropped by InfluxDB")
    return name.translate(_KEY), len(name.encode("utf-8", "surrogatepass"))


def check_shape(point: Point) -> None:
    """citypilot's own shape (DESIGN.md "Stored shape"), checked by both stores alike next to
    `encode`: tag keys are the known ones, and no field shares a name with one, because
    InfluxQL's `SELECT *` could not tell such a field from the tag."""
    _check_tag_keys(point.tags)
    if not _TAG_KEY_SET.isdisjoint(point.fields):
        name = next(name for name in point.fields if name in _TAG_KEY_SET)
        raise UnrepresentablePoint(f"field key {name!r} is also a tag key")


@functools.lru_cache(maxsize=1 << 16)  # once per series, as the series key
def _check_tag_keys(tags: tuple[tuple[str, str], ...]) -> None:
    for key, _ in tags:
        if key not in _TAG_KEY_SET:
            raise UnrepresentablePoint(f"tag key {key!r} is not one of {', '.join(TAG_KEYS)}")


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not name:
        raise UnrepresentablePoint(f"{what} is empty")
    if "\n" in name:
        raise UnrepresentablePoint(f"{what} {name!r} contains a newline")
    if "\x00" in name or "\r" in name:
        # Both are stored, but InfluxQL's scanner ends input at NUL and reads CR as a newline
        # inside quotes (with no escape for either): the series could never be selected.
        raise UnrepresentablePoint(f"{what} {name!r} contains NUL or CR, which InfluxQL "
                                   "cannot quote")
    if "\\" in name:
        for i, char in enumerate(name):
            if char == "\\" and (i + 1 == len(name) or name[i + 1] in _AFTER_BACKSLASH):
                raise UnrepresentablePoint(
                    f"{what} {name!r} has a backslash at its end or before ',', ' ', '=' or "
                    "'\"', which line protocol cannot carry")


def _tags(tags: tuple[tuple[str, str], ...]) -> str:
    parts: list[str] = []
    seen: set[str] = set()
    # InfluxDB sorts tags by key (bytewise: the same as by code point) before indexing.
    for key, value in sorted(tags):
        _check_name(key, "tag key")
        _check_name(value, f"tag value of {key!r}")
        if key == "time":
            raise UnrepresentablePoint("tag key 'time' is refused by InfluxDB")
        if key in seen:
            raise UnrepresentablePoint(f"tag key {key!r} appears twice")
        seen.add(key)
        parts.append(f",{key.translate(_KEY)}={value.translate(_KEY)}")
    return "".join(parts)


def _fields(fields: dict[str, FieldValue], key_bytes: int) -> str:
    if not fields:
        raise UnrepresentablePoint("point has no fields")
    names = tuple(fields)
    parts: list[str] = []
    for name, escaped, value in zip(names, _field_keys(names, key_bytes), fields.values(),
                                    strict=True):
        if type(value) is float and value - value == 0.0:  # the hot path: a finite float
            parts.append(f"{escaped}={value!r}")
        else:
            parts.append(f"{escaped}={_value(name, value)}")
    return ",".join(parts)


# A series' points carry the same field names, in the same order, point after point.
@functools.lru_cache(maxsize=1 << 14)
def _field_keys(names: tuple[str, ...], key_bytes: int) -> tuple[str, ...]:
    out = []
    for name in names:
        escaped, name_bytes = _field_key(name)
        if key_bytes + 4 + name_bytes > MAX_KEY_BYTES:
            raise UnrepresentablePoint(f"series key with field {name[:40]!r}... is longer "
                                       f"than InfluxDB's {MAX_KEY_BYTES} bytes")
        out.append(escaped)
    return tuple(out)


def _value(name: str, value: object) -> str:
    if isinstance(value, str):
        return f'"{value.translate(_STRING)}"'
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnrepresentablePoint(f"field {name!r} is a {type(value).__name__}, "
                                   "not a float or a string")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise UnrepresentablePoint(f"field {name!r} is {value!r}: only finite numbers are stored")
    return repr(number)


def _timestamp(ts: object) -> int:
    if type(ts) is int and MIN_TS_NS <= ts <= MAX_TS_NS:  # the hot path
        return ts
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise UnrepresentablePoint(f"timestamp {ts!r} is not integer nanoseconds")
    if not MIN_TS_NS <= ts <= MAX_TS_NS:
        raise UnrepresentablePoint(f"timestamp {ts} ns is outside InfluxDB's range")
    return ts
