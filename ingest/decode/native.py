"""The native citypilot format: JSON objects (or arrays of them) on citypilot/v1 topics.

Identity comes from the topic only. Each element of an array is judged alone: one bad
reading is dead-lettered while its neighbours are stored.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from ingest import topics, units
from ingest.decode import Limits
from ingest.model import (
    DELAY_FIELD,
    EVENT_MEASUREMENT,
    MIN_TS_NS,
    NAME_PATTERN,
    RESERVED_KINDS,
    STATUS_MEASUREMENT,
    Decoded,
    Event,
    FieldValue,
    Point,
    Reason,
    Rejection,
    Status,
    Telemetry,
    TimestampError,
    spread_ns,
    to_ns,
)

_MODELS: dict[topics.Channel, type[BaseModel]] = {
    topics.Channel.TELEMETRY: Telemetry,
    topics.Channel.EVENT: Event,
    topics.Channel.STATUS: Status,
}
# What JSON encoders write for non-finite floats (Python's json: NaN, Infinity): invalid JSON,
# but the reason a user needs is "not finite", not "bad json".
_NON_FINITE = re.compile(rb"[:\[,]\s*-?(?:NaN|Infinity)\s*[,\]}]")
_NAME = re.compile(NAME_PATTERN)
_KEYS = frozenset(("ts", "kind", "values"))
_STATUS_FIELDS = ("state", "battery", "rssi", "snr", "linkquality", "spool_depth")


class NativeDecoder:
    def __init__(self, limits: Limits | None = None, *, fast_path: bool = True) -> None:
        self.limits = limits or Limits()
        self.fast_path = fast_path
        self._names: set[str] = set()  # names already seen to match the grammar
        # Value names already allowed on the fast path -> (low, high, in the unit registry).
        self._bounds: dict[str, tuple[float, float, bool]] = {}

    def __call__(self, topic: str, payload: bytes, received_ns: int) -> Decoded:
        out = Decoded()
        if len(payload) > self.limits.max_payload_bytes:
            return _reject(out, Reason.TOO_LARGE, f"{len(payload)} bytes > limit of "
                           f"{self.limits.max_payload_bytes}", payload)
        try:
            identity, channel = topics.parse(topic)
        except topics.TopicError as exc:
            reason = Reason.UNKNOWN_CHANNEL if exc.unknown_channel else Reason.BAD_TOPIC
            return _reject(out, reason, str(exc), payload)
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            text = str(exc).lower()
            reason = (Reason.BAD_ENCODING if "utf-8" in text
                      else Reason.NOT_FINITE if "infinity" in text or _NON_FINITE.search(payload)
                      else Reason.BAD_JSON)
            return _reject(out, reason, str(exc), payload)
        if self.fast_path and channel is topics.Channel.TELEMETRY:
            fast = self.fast_telemetry(doc, identity, received_ns)
            if fast is not None:
                return fast
        if isinstance(doc, dict):
            self._element(out, doc, _Raw(doc, payload), identity, channel, received_ns, "")
        elif isinstance(doc, list) and doc:
            for i, element in enumerate(doc):
                raw = _Raw(element, None if len(doc) > 1 else payload)
                self._element(out, element, raw, identity, channel, received_ns, f"element {i}: ")
        elif isinstance(doc, list):
            _reject(out, Reason.EMPTY, "empty array", payload)
        else:
            _reject(out, Reason.BAD_SHAPE, f"expected an object or an array, got "
                    f"{type(doc).__name__}", payload)
        return out

    def fast_telemetry(self, doc: Any, identity: topics.Identity,
                        received_ns: int) -> Decoded | None:
        """The hot case by hand: telemetry that is entirely valid, with integer millisecond
        timestamps, decoded without pydantic (half the cost per reading, bench/README.md).
        None for anything else, which the model then judges and names. It must give exactly
        what the model path gives: tests/unit/test_native_fastpath.py proves it."""
        elements = doc if type(doc) is list else [doc]
        if not elements:
            return None
        tags = (("pilot", identity.pilot), ("gateway", identity.gateway),
                ("device", identity.device))
        latest = received_ns + int(self.limits.max_future_s * 1e9)
        out = Decoded()
        for element in elements:
            if type(element) is not dict or not _KEYS.issuperset(element):
                return None
            ts, kind, values = element.get("ts"), element.get("kind"), element.get("values")
            if type(ts) is not int or type(kind) is not str or type(values) is not dict:
                return None
            ns = ts * 1_000_000
            if not MIN_TS_NS <= ns <= latest or kind in RESERVED_KINDS \
                    or not self._name_ok(kind) or not 0 < len(values) <= 256:
                return None
            fields: dict[str, FieldValue] = {}
            for name, value in values.items():
                kind_of = type(value)
                if kind_of is float:
                    if value - value != 0.0:  # NaN or infinity
                        return None
                elif kind_of is not int or not -(2**53) <= value <= 2**53:
                    return None
                bounds = self._bounds.get(name) or self._learn(name)
                if bounds is None:
                    return None
                low, high, known = bounds
                if not known:
                    out.unknown_metrics.append(name)
                elif not low <= value <= high:
                    return None
                fields[name] = value if kind_of is float else float(value)
            fields[DELAY_FIELD] = (received_ns - ns) / 1e9
            out.points.append(Point(kind, tags, fields, ns))
        return out

    def _learn(self, name: object) -> tuple[float, float, bool] | None:
        """A value name's registered range and whether the unit registry knows it,
        remembered; None when the name is not allowed (the model path names the reason)."""
        if name == DELAY_FIELD or not self._name_ok(name):
            return None
        assert isinstance(name, str)
        metric = units.lookup(name)
        bounds = (-math.inf, math.inf, False) if metric is None else \
            (metric.low, metric.high, True)
        if len(self._bounds) < 100_000:  # bounded: hostile gateways invent names
            self._bounds[name] = bounds
        return bounds

    def _name_ok(self, name: object) -> bool:
        if name in self._names:
            return True
        if type(name) is str and _NAME.fullmatch(name) is not None:
            if len(self._names) < 100_000:  # bounded: hostile gateways invent names
                self._names.add(name)
            return True
        return False

    def _element(self, out: Decoded, doc: Any, raw: _Raw, identity: topics.Identity,
                 channel: topics.Channel, received_ns: int, where: str) -> None:
        try:
            msg = _MODELS[channel].model_validate(doc)
        except ValidationError as exc:
            reason, detail = _classify(exc)
            _reject(out, reason, where + detail, raw.get())
            return
        try:
            ts = to_ns(msg.ts, received_ns)  # type: ignore[attr-defined]
        except TimestampError as exc:
            _reject(out, Reason.BAD_TIMESTAMP, where + str(exc), raw.get())
            return
        if ts > received_ns + int(self.limits.max_future_s * 1e9):
            ahead = (ts - received_ns) / 1e9
            _reject(out, Reason.FUTURE_TIMESTAMP, f"{where}ts is {ahead:.0f} s ahead of the "
                    f"collector (limit {self.limits.max_future_s:g} s)", raw.get())
            return
        base = (("pilot", identity.pilot), ("gateway", identity.gateway),
                ("device", identity.device))
        delay = (received_ns - ts) / 1e9
        if isinstance(msg, Telemetry):
            self._telemetry(out, msg, raw, base, ts, delay, where)
        elif isinstance(msg, Event):
            tags = (*base, ("service", msg.service), ("type", msg.type))
            fields: dict[str, FieldValue] = {"value": float(msg.value), DELAY_FIELD: delay}
            if msg.user is not None:
                fields["user"] = msg.user
            # Spread by the element's canonical JSON, not its bytes: alone, as an array's
            # only element or among others, re-serialised with other spacing or key order,
            # the same event lands on the same point.
            canonical = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
            out.points.append(Point(EVENT_MEASUREMENT, tags, fields, spread_ns(ts, canonical)))
        else:
            assert isinstance(msg, Status)
            self._status(out, msg, raw, base, ts, delay, where)

    def _telemetry(self, out: Decoded, msg: Telemetry, raw: _Raw, tags: topics_tags,
                   ts: int, delay: float, where: str) -> None:
        if msg.kind in RESERVED_KINDS:
            _reject(out, Reason.BAD_NAME, f"{where}kind {msg.kind!r} is reserved", raw.get())
            return
        fields: dict[str, FieldValue] = {}
        for name, value in msg.values.items():
            if name == DELAY_FIELD:
                _reject(out, Reason.BAD_NAME, f"{where}value name {name!r} is reserved",
                        raw.get())
                return
            metric = units.lookup(name)
            if metric is None:
                out.unknown_metrics.append(name)
            elif not metric.in_range(value):
                _reject(out, Reason.OUT_OF_RANGE, f"{where}{name}={value!r} outside "
                        f"[{metric.low:g}, {metric.high:g}] {metric.unit}", raw.get())
                return
            try:
                fields[name] = float(value)
            except OverflowError:  # an integer beyond any float (JSON allows 1e400 as int)
                _reject(out, Reason.NOT_FINITE, f"{where}{name} is too large for a float",
                        raw.get())
                return
        fields[DELAY_FIELD] = delay
        out.points.append(Point(msg.kind, tags, fields, ts))

    def _status(self, out: Decoded, msg: Status, raw: _Raw, tags: topics_tags, ts: int,
                delay: float, where: str) -> None:
        fields: dict[str, FieldValue] = {}
        for name in _STATUS_FIELDS:
            value = getattr(msg, name)
            if value is None:
                continue
            metric = units.lookup(name)
            if metric is not None and not isinstance(value, str) and not metric.in_range(value):
                _reject(out, Reason.OUT_OF_RANGE, f"{where}{name}={value!r} outside "
                        f"[{metric.low:g}, {metric.high:g}] {metric.unit}", raw.get())
                return
            fields[name] = value if isinstance(value, str) else float(value)
        if not fields:  # a heartbeat: every status field is optional (DESIGN.md)
            fields[DELAY_FIELD] = delay
        out.points.append(Point(STATUS_MEASUREMENT, tags, fields, ts))


topics_tags = tuple[tuple[str, str], ...]


class _Raw:
    """An element's own bytes, encoded only when needed (a rejection): in
    an array of 50 good readings, re-encoding each one would cost more than decoding it."""

    __slots__ = ("doc", "raw")

    def __init__(self, doc: Any, raw: bytes | None) -> None:
        self.doc, self.raw = doc, raw

    def get(self) -> bytes:
        if self.raw is None:
            self.raw = orjson.dumps(self.doc)
        return self.raw


def _reject(out: Decoded, reason: Reason, detail: str, raw: bytes) -> Decoded:
    out.rejections.append(Rejection(reason, detail, raw))
    return out


def _classify(exc: ValidationError) -> tuple[Reason, str]:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    loc = ".".join(str(p) for p in first["loc"]) or "payload"
    detail = f"{loc}: {first['msg']}"
    if len(errors) > 1:
        detail += f" (+{len(errors) - 1} more)"
    kinds = {e["type"] for e in errors}
    if "finite_number" in kinds:
        return Reason.NOT_FINITE, detail
    if "string_pattern_mismatch" in kinds:
        return Reason.BAD_NAME, detail
    if kinds & {"greater_than_equal", "less_than_equal"}:
        return Reason.OUT_OF_RANGE, detail
    return Reason.BAD_SHAPE, detail
