"""What every gateway-format adapter shares: its settings, the message it extracts, the points.

An adapter (TTS, ChirpStack, Zigbee2MQTT, Tasmota, line protocol) only knows its format: it
turns one MQTT message into `Reading`s — a raw device identity, a timestamp and which clock it
came from, readings under the format's own names, and status it already knows in canonical form
(radio RSSI/SNR, online/offline). `Adapter.emit` then does the part that must be identical for
all of them: sanitise the device to the topic grammar, map and convert the readings
(`fields.py`), range-check, refuse timestamps from the future, and build DESIGN.md's stored
shape — telemetry under the kind, tags pilot/gateway/device only, `ingest_delay_s` and the
`time_source` string field; status under `device_status`.

Like the native decoder, an adapter never raises for bad input: a rejection is data with a
Reason. Identity and time problems reject the whole reading; a payload that cannot be read
(no codec, unknown unit) still lets the radio status that came with it through, because the
device *was* heard — replaying the dead letter later rewrites that status point identically.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import orjson

from ingest import topics
from ingest.decode import Limits
from ingest.decode.codecs import Codec
from ingest.decode.fields import (
    DEFAULT_FIELDS,
    DEFAULT_KIND,
    STATUS_METRICS,
    TIME_SOURCE_FIELD,
    FieldError,
    FieldRule,
    Offered,
    Resolved,
    TimeSource,
    number,
    resolve,
    settle,
    store_value,
)
from ingest.model import (
    DELAY_FIELD,
    MIN_TS_NS,
    STATUS_MEASUREMENT,
    Decoded,
    FieldValue,
    Point,
    Reason,
    Rejection,
)

log = logging.getLogger(__name__)
# As in the native decoder: what JSON encoders write for non-finite floats is invalid JSON, but
# the reason a user needs is "not finite", not "bad json".
_NON_FINITE = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]")


@dataclass(frozen=True, slots=True)
class AdapterConfig:
    """The per-source settings an adapter needs (built from a `Source` by `decoder_for`)."""

    pilot: str
    gateway: str
    kinds: tuple[tuple[str, str], ...] = ()  # (device glob, kind), first match wins
    fields: Mapping[str, FieldRule] = field(default_factory=dict)
    codec: Codec | None = None
    codec_name: str | None = None
    timezone: ZoneInfo | None = None
    device_key: str | None = None
    topic_filter: str = "#"

    def kind_for(self, raw_device: str, device: str) -> str | None:
        for pattern, kind in self.kinds:
            if fnmatch.fnmatchcase(raw_device, pattern) or fnmatch.fnmatchcase(device, pattern):
                return kind
        return None


@dataclass(slots=True)
class Reading:
    """One device's content of a message, in the format's own terms, before mapping."""

    device: str  # the format's identity, unsanitised
    ts: int
    time_source: TimeSource
    values: list[Offered] = field(default_factory=list)
    status: dict[str, FieldValue] = field(default_factory=dict)  # already canonical
    stated_units: Mapping[str, str] = field(default_factory=dict)  # metric -> unit stated
    kind: str | None = None  # the format's own kind (line protocol: the measurement)
    raw: bytes = b""  # what a rejection keeps: the message, or the element judged alone
    where: str = ""  # prefix of rejection details ("line 2: ", "DS18B20: ")


def received(device: str, received_ns: int) -> Reading:
    """A reading stamped with the collector's clock, for formats (or messages) without one."""
    return Reading(device, received_ns, TimeSource.RECEIVED)


class Adapter:
    """Base of the format adapters: the `Decoder` protocol, with the shared mapping in `emit`."""

    defaults: ClassVar[Mapping[str, FieldRule]] = DEFAULT_FIELDS

    def __init__(self, config: AdapterConfig, limits: Limits | None = None) -> None:
        self.config = config
        self.limits = limits or Limits()
        # Non-numeric readings (strings, lists, objects) by name: not stored, counted here so
        # the collector can export them.
        self.dropped_fields: Counter[str] = Counter()

    def __call__(self, topic: str, payload: bytes, received_ns: int) -> Decoded:
        out = Decoded()
        if len(payload) > self.limits.max_payload_bytes:
            reject(out, Reason.TOO_LARGE, f"{len(payload)} bytes > limit of "
                   f"{self.limits.max_payload_bytes}", payload)
            return out
        try:
            self.decode(out, topic, payload, received_ns)
        except Exception as exc:  # the fuzz tests call decode() directly; this is the backstop
            log.exception("%s failed on a message from %r", type(self).__name__, topic)
            out.points.clear()
            reject(out, Reason.UNDECODABLE, f"internal error: {type(exc).__name__}: {exc}",
                   payload)
        if not (out.points or out.rejections):
            out.skipped = 1  # a message of the format that carries no readings
        return out

    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        """Add the message's points and rejections to `out`; never raise for bad input.

        A message that yields neither is counted as skipped by `__call__`.
        """
        raise NotImplementedError

    def drop(self, name: str) -> None:
        self.dropped_fields[name] += 1

    def emit(self, out: Decoded, reading: Reading, received_ns: int) -> None:
        """Map one reading to points (or a rejection) and add them to `out`."""
        numeric = self._numeric(reading.values)
        if not numeric and not reading.status:
            return  # nothing to store (strings only): the message counts as skipped
        if reading.ts < MIN_TS_NS:
            reject(out, Reason.BAD_TIMESTAMP, f"{reading.where}timestamp {reading.ts} ns is "
                   "before 2000-01-01 (unset clock?)", reading.raw)
            return
        if reading.ts > received_ns + int(self.limits.max_future_s * 1e9):
            ahead = (reading.ts - received_ns) / 1e9
            reject(out, Reason.FUTURE_TIMESTAMP, f"{reading.where}timestamp is {ahead:.0f} s "
                   f"ahead of the collector (limit {self.limits.max_future_s:g} s)", reading.raw)
            return
        device = topics.sanitise(reading.device)
        tags = (("pilot", self.config.pilot), ("gateway", self.config.gateway),
                ("device", device))
        status: dict[str, FieldValue] = dict(reading.status)
        telemetry: dict[str, FieldValue] = {}
        unknown: list[str] = []
        try:
            self._map(numeric, reading.stated_units, telemetry, status, unknown)
        except FieldError as exc:
            reject(out, exc.reason, f"{reading.where}{exc}", reading.raw)
            telemetry.clear()
            status = dict(reading.status)
        else:
            out.unknown_metrics.extend(unknown)
        source = reading.time_source.value
        if telemetry:
            kind = (self.config.kind_for(reading.device, device) or reading.kind
                    or DEFAULT_KIND)
            telemetry[DELAY_FIELD] = (received_ns - reading.ts) / 1e9
            telemetry[TIME_SOURCE_FIELD] = source
            out.points.append(Point(kind, tags, telemetry, reading.ts))
        if status:
            status[TIME_SOURCE_FIELD] = source
            out.points.append(Point(STATUS_MEASUREMENT, tags, status, reading.ts))

    def _numeric(self, offered: list[Offered]) -> list[tuple[Offered, float]]:
        numeric: list[tuple[Offered, float]] = []
        for item in offered:
            value = number(item.value)
            if value is None:
                self.drop(item.name)
            else:
                numeric.append((item, value))
        return numeric

    def _map(self, numeric: list[tuple[Offered, float]], stated_units: Mapping[str, str],
             telemetry: dict[str, FieldValue], status: dict[str, FieldValue],
             unknown: list[str]) -> None:
        resolved: list[Resolved] = []
        values: list[float] = []
        for offered, value in numeric:
            r = resolve(offered, self.config.fields, self.defaults)
            if r is None:
                self.drop(offered.name)
                continue
            resolved.append(r)
            values.append(value)
        for r, value in zip(settle(resolved), values, strict=True):
            if r is None:
                continue
            stored = store_value(r, value, stated_units.get(r.rule.metric), unknown)
            target = status if r.rule.metric in STATUS_METRICS else telemetry
            target[r.rule.metric] = stored


def reject(out: Decoded, reason: Reason, detail: str, raw: bytes) -> None:
    out.rejections.append(Rejection(reason, detail, raw))


def load_json(out: Decoded, payload: bytes) -> tuple[bool, Any]:
    """(True, document), or (False, None) after adding the rejection (the native reasons)."""
    try:
        return True, orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        text = str(exc).lower()
        reason = (Reason.BAD_ENCODING if "utf-8" in text
                  else Reason.NOT_FINITE if "infinity" in text or _NON_FINITE.search(payload)
                  else Reason.BAD_JSON)
        reject(out, reason, str(exc), payload)
        return False, None


def load_object(out: Decoded, payload: bytes, what: str) -> dict[str, Any] | None:
    """The message as a JSON object, or None after adding the rejection."""
    ok, doc = load_json(out, payload)
    if not ok:
        return None
    if not isinstance(doc, dict):
        reject(out, Reason.BAD_SHAPE, f"expected a JSON object ({what}), got "
               f"{type(doc).__name__}", payload)
        return None
    return doc


def flatten(doc: Mapping[str, Any], prefix: str = "", depth: int = 0) -> list[Offered]:
    """Nested objects as dotted names: `{"air": {"pm2_5": 3}}` offers `air.pm2_5` (leaf pm2_5).

    An explicit mapping may name the dotted path or the leaf; the built-in table looks at the
    leaf; a reading nothing maps is stored as `air_pm2_5`. Depth is capped: decoders nest a
    level or two, not fifty.
    """
    items: list[Offered] = []
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and depth < 4:
            items.extend(flatten(value, path + ".", depth + 1))
        else:
            keys = (path, key) if prefix else (key,)
            items.append(Offered(path, keys, key, value))
    return items
