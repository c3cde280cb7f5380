"""The domain model: what a gateway may send, and the points citypilot stores.

Pure: no I/O. The payload models are frozen pydantic v2 models with `extra="forbid"`; they
define what is accepted. Stores receive `Point`s, the one internal shape (a measurement, its
tags, its fields, a timestamp in integer nanoseconds), which maps one-to-one onto InfluxDB's
data model and onto the SQLite store's rows.
"""

from __future__ import annotations

import base64
import hashlib
import math
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StringConstraints,
    ValidationError,
)

from ingest.topics import ID_PATTERN

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
# The one pair of id and name types: payloads, the sources file and the registry use them.
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN, strict=True)]
IDENT_PATTERN = f"^{ID_PATTERN}$"  # the topic grammar's pilot, gateway, device
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN, strict=True)]
Number = Annotated[StrictFloat | StrictInt, Field(allow_inf_nan=False)]
# Epoch milliseconds (a number) or an RFC 3339 string; resolved by `to_ns`.
Timestamp = Annotated[StrictInt | StrictFloat | str, Field(union_mode="left_to_right")]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=128, strict=True)]

# Measurements and fields citypilot itself writes: a telemetry kind or value may not take them.
EVENT_MEASUREMENT = "event"
STATUS_MEASUREMENT = "device_status"
DEAD_LETTER_MEASUREMENT = "dead_letter"
RESERVED_KINDS = frozenset({EVENT_MEASUREMENT, STATUS_MEASUREMENT, DEAD_LETTER_MEASUREMENT})
DELAY_FIELD = "ingest_delay_s"
TAG_KEYS = ("pilot", "gateway", "device", "service", "type", "reason")

Tags = tuple[tuple[str, str], ...]
FieldValue = float | str


class Reason(StrEnum):
    """Why a message (or one element of an array) became a dead letter."""

    BAD_TOPIC = "bad_topic"
    UNKNOWN_CHANNEL = "unknown_channel"
    TOO_LARGE = "too_large"
    BAD_ENCODING = "bad_encoding"
    BAD_JSON = "bad_json"
    BAD_SHAPE = "bad_shape"
    BAD_NAME = "bad_name"
    NOT_FINITE = "not_finite"
    OUT_OF_RANGE = "out_of_range"
    BAD_TIMESTAMP = "bad_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    EMPTY = "empty"
    STORE_REJECTED = "store_rejected"
    UNDECODABLE = "undecodable"
    NO_CODEC = "no_codec"  # a LoRaWAN uplink carries only raw bytes and no codec is configured
    UNKNOWN_UNIT = "unknown_unit"  # a format states a unit the unit registry cannot convert
    NO_BIRTH = "no_birth"  # Sparkplug B data whose NBIRTH/DBIRTH (alias table) was not seen


@dataclass(frozen=True, slots=True)
class Point:
    """One stored point: InfluxDB's model. `ts` is integer nanoseconds since the epoch."""

    measurement: str
    tags: Tags
    fields: dict[str, FieldValue]
    ts: int

    def tag(self, key: str) -> str:
        return tag_of(self.tags, key)


def tag_of(tags: Tags, key: str) -> str:
    """The value of a tag in a tags tuple, '' when absent (as InfluxDB reports it)."""
    for k, v in tags:
        if k == key:
            return v
    return ""


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: Reason
    detail: str
    payload: bytes = b""


@dataclass(slots=True)
class Decoded:
    """What decoding one message gave: points to store, rejections to dead-letter."""

    points: list[Point] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    unknown_metrics: list[str] = field(default_factory=list)
    skipped: int = 0
    # (topic, payload) to publish back on the broker the message came from, QoS 0: Sparkplug
    # B rebirth requests (NCMD `Node Control/Rebirth`), the one thing a collector publishes.
    replies: list[tuple[str, bytes]] = field(default_factory=list)


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
    ts: Timestamp | None = None


class Telemetry(_Payload):
    kind: Name
    values: dict[Name, Number] = Field(min_length=1, max_length=256)


class Event(_Payload):
    service: Name
    type: Literal["session_start", "session_end", "use", "feedback"]
    user: UserId | None = None
    value: Number = 1.0


class Status(_Payload):
    state: Literal["online", "offline"] | None = None
    battery: Annotated[Number, Field(ge=0, le=1)] | None = None
    rssi: Number | None = None
    snr: Number | None = None
    linkquality: Number | None = None
    spool_depth: Annotated[StrictInt, Field(ge=0)] | None = None


MIN_TS_NS = 946_684_800 * 10**9  # 2000-01-01: earlier device clocks are unset, not history


class TimestampError(ValueError):
    pass


def to_ns(ts: int | float | str | None, now_ns: int) -> int:
    """Resolve a payload `ts` (epoch ms or RFC 3339) to integer nanoseconds; None means now."""
    if ts is None:
        return now_ns
    if type(ts) is int:  # epoch milliseconds: the common case, exact
        ns = ts * 1_000_000
        if ns < MIN_TS_NS:
            raise TimestampError(f"ts {ts!r} is before 2000-01-01 (unset clock?)")
        return ns
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts.replace("z", "Z"))
        except ValueError:
            raise TimestampError(f"ts {ts!r} is not RFC 3339") from None
        if parsed.tzinfo is None:
            raise TimestampError(f"ts {ts!r} has no UTC offset")
        seconds = int(parsed.timestamp())
        # Keep the string's own sub-second digits exactly: fromisoformat stops at microseconds.
        ns = seconds * 10**9 + parsed.microsecond * 1000 + _sub_micro_ns(ts)
    else:
        if not math.isfinite(ts):
            raise TimestampError("ts is not finite")
        whole = int(ts)  # exact for integer milliseconds; floats keep their sub-ms part
        ns = whole * 1_000_000 + round((ts - whole) * 1_000_000)
    if ns < MIN_TS_NS:
        raise TimestampError(f"ts {ts!r} is before 2000-01-01 (unset clock?)")
    return ns


def _sub_micro_ns(text: str) -> int:
    """Nanoseconds beyond microseconds in an RFC 3339 fraction (`.123456789Z` -> 789)."""
    dot = text.find(".")
    if dot < 0:
        return 0
    end = dot + 1
    while end < len(text) and text[end].isdigit():
        end += 1
    digits = text[dot + 1 : end]
    return int(digits[6:9].ljust(3, "0")) if len(digits) > 6 else 0


def spread_ns(ts: int, *content: str | bytes) -> int:
    """Give a millisecond timestamp a deterministic sub-millisecond offset from the content.

    Two distinct events (or dead letters) in the same millisecond of the same series would
    otherwise collapse into one point; the same content always gets the same offset, so a
    redelivered message still lands on the same point. Finer device timestamps are kept.
    """
    if ts % 1_000_000:
        return ts
    h = hashlib.blake2b(digest_size=8)
    for part in content:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\x00")
    return ts + int.from_bytes(h.digest(), "big") % 1_000_000


DEAD_LETTER_PAYLOAD_CAP = 16 * 1024


BASE64 = "base64"  # the `payload_encoding` of a dead letter whose payload is not UTF-8


def dead_letter(topic: str, rejection: Rejection, received_ns: int) -> Point:
    """The stored form of a rejected message: reason as tag; topic, payload, detail as strings.

    A UTF-8 payload is kept as its text; any other is kept byte for byte as base64, with the
    field `payload_encoding` = "base64" (`payload_bytes` turns either back into the bytes).
    Past DEAD_LETTER_PAYLOAD_CAP bytes the payload is cut, and says so: the text with a
    `...[N bytes, truncated]` suffix, base64 in the detail (its payload stays decodable)."""
    whole = rejection.payload
    raw = whole[:DEAD_LETTER_PAYLOAD_CAP]
    cut = len(whole) > DEAD_LETTER_PAYLOAD_CAP
    detail = rejection.detail[:2048]
    fields: dict[str, FieldValue] = {"topic": topic[:1024]}
    try:
        whole.decode("utf-8")
        # A cut may split a character: drop the bytes of it that were kept.
        fields["payload"] = raw.decode("utf-8", errors="ignore") + (
            f"...[{len(whole)} bytes, truncated]" if cut else "")
    except UnicodeDecodeError:
        fields["payload"] = base64.b64encode(raw).decode("ascii")
        fields["payload_encoding"] = BASE64
        if cut:
            detail += f" [payload: the first {len(raw)} of {len(whole)} bytes]"
    fields["detail"] = detail
    ms = received_ns - received_ns % 1_000_000
    ts = spread_ns(ms, topic, raw, rejection.reason.value, rejection.detail)
    return Point(DEAD_LETTER_MEASUREMENT, (("reason", rejection.reason.value),), fields, ts)


def payload_bytes(payload: str, encoding: str = "") -> bytes:
    """A stored dead letter's payload as the bytes that arrived (see `dead_letter`)."""
    return base64.b64decode(payload) if encoding == BASE64 else payload.encode("utf-8")


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone of this name; ValueError with the fix when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        hint = ("" if zoneinfo.available_timezones()
                else "; this system has no time-zone database: pip install tzdata")
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Athens){hint}"
                         ) from None


# -- one line for a pydantic ValidationError ------------------------------------------------
# The config file's sources, the settings and the pilot registry all refuse bad input with one
# line a user can act on (DESIGN.md "Bad input"); they differ only in how they name *where*
# (`sources[1] (gw1)`, `CITYPILOT_STORE_URL (or store_url in c.toml)`, a registry path), so the
# wording of the problem itself is made here, once.
# Parts of an error location that name a type of a union or a mapping, not a key.
_NOT_KEYS = frozenset(("str", "FieldMap"))


@dataclass(frozen=True, slots=True)
class Problem:
    """The first error of a ValidationError, in words."""

    loc: tuple[str, ...]  # keys and indexes down to the bad value
    kind: str  # pydantic's error type, e.g. "extra_forbidden"
    message: str  # "unknown key (known: a, b)", "required key is missing", or pydantic's
    more: int  # further errors not described

    @property
    def key(self) -> str:
        return ".".join(self.loc)

    def text(self) -> str:
        return self.message + (f" [+{self.more} more]" if self.more else "")


def first_problem(exc: ValidationError, known: Collection[str] = (),
                  show_input: bool = False) -> Problem:
    """`known`: the keys allowed where an unknown key was found; `show_input`: append the
    offending scalar value (`(got 'x')`), for inputs that are no secret."""
    err = exc.errors(include_url=False, include_input=show_input)[0]
    loc = tuple(str(part) for part in err["loc"] if part not in _NOT_KEYS)
    kind = err["type"]
    message = err["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        message = f"unknown key (known: {', '.join(known)})" if known else "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    elif show_input:
        value = err.get("input")
        if isinstance(value, str | int | float) and value != "":
            message += f" (got {value!r})"
    return Problem(loc, kind, message, exc.error_count() - 1)


def one_line(exc: ValidationError, where: str = "", known: Collection[str] = ()) -> str:
    """`where.key: problem`; a check across keys that starts its message with the key it
    blames (`name: ...`) is placed under that key."""
    problem = first_problem(exc, known)
    head = ".".join(part for part in (where, problem.key) if part)
    if not problem.loc and problem.message.split(":")[0] in known:
        return f"{where}.{problem.text()}" if where else problem.text()
    return f"{head}: {problem.text()}" if head else problem.text()
