"""The collector's hot path offline: CPU per reading of each piece, no servers involved.

`python -m bench.hotpath` times, on the current code, what the collector does per message
and per reading (decode, the pydantic validation inside it, line-protocol encoding, gzip), the
B path by batch size and garbage-collector setting, and two what-if prototypes that are not
citypilot code: a hand-written telemetry check, and decoding straight to line protocol. They
are estimates for the benchmark's README ("what would move it"); they skip what the real
decoder does for rejected input and must not be mistaken for a replacement. Best of 3 runs;
on a shared machine the figures move with the neighbours' load.
"""

from __future__ import annotations

import functools
import gc
import gzip
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson

from bench.load import reading
from ingest import topics, units
from ingest.decode.native import NativeDecoder
from ingest.model import Point, Telemetry
from ingest.stores.lineprotocol import check_shape, encode

TOPIC = "citypilot/v1/bench/gw-bench/dev0/telemetry"
_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")


def per_item_us(fn: Callable[[], Any], items: int, repeat: int = 3) -> float:
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best / items * 1e6


def payloads(messages: int, per_message: int, base_ms: int) -> list[bytes]:
    if per_message == 1:
        return [orjson.dumps(reading(base_ms + i, i)) for i in range(messages)]
    return [orjson.dumps([reading(base_ms + m * per_message + j, j)
                          for j in range(per_message)]) for m in range(messages)]


class Prototypes:
    """What-if decoders (estimates only): cached topic identity and names, hand-written
    checks of a telemetry element; optionally straight to line protocol."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.identities: dict[str, topics.Identity] = {}
        self.keys: dict[tuple[str, str], str] = {}

    def _name_ok(self, name: object) -> bool:
        if name in self.names:
            return True
        if isinstance(name, str) and _NAME.fullmatch(name):
            self.names.add(name)
            return True
        return False

    def _identity(self, topic: str) -> topics.Identity:
        identity = self.identities.get(topic)
        if identity is None:
            identity = self.identities[topic] = topics.parse(topic)[0]
        return identity

    def _values(self, values: object) -> dict[str, float] | None:
        if type(values) is not dict or not values:
            return None
        out: dict[str, float] = {}
        for name, value in values.items():
            if type(value) not in (float, int) or not self._name_ok(name):
                return None
            number = float(value)
            metric = units.lookup(name)
            if not math.isfinite(number) or (metric is not None and not metric.in_range(number)):
                return None
            out[name] = number
        return out

    def _elements(self, payload: bytes) -> list[tuple[str, dict[str, float], int]] | None:
        doc = orjson.loads(payload)
        out = []
        for e in doc if isinstance(doc, list) else (doc,):
            if type(e) is not dict or e.keys() - {"ts", "kind", "values"}:
                return None
            kind, ts, values = e.get("kind"), e.get("ts"), self._values(e.get("values"))
            if values is None or type(ts) is not int or not isinstance(kind, str) \
                    or not self._name_ok(kind):
                return None
            out.append((kind, values, ts * 1_000_000))
        return out

    def points(self, topic: str, payload: bytes, received_ns: int) -> list[Point] | None:
        i = self._identity(topic)
        tags = (("pilot", i.pilot), ("gateway", i.gateway), ("device", i.device))
        elements = self._elements(payload)
        if elements is None:
            return None
        return [Point(kind, tags, {**values, "ingest_delay_s": (received_ns - ts) / 1e9}, ts)
                for kind, values, ts in elements]

    def lines(self, topic: str, payload: bytes, received_ns: int) -> bytes | None:
        elements = self._elements(payload)
        if elements is None:
            return None
        out = []
        for kind, values, ts in elements:
            key = self.keys.get((topic, kind))
            if key is None:
                i = self._identity(topic)
                key = self.keys[(topic, kind)] = (f"{kind},device={i.device},"
                                                  f"gateway={i.gateway},pilot={i.pilot}")
            fields = ",".join(f"{k}={v!r}" for k, v in values.items())
            out.append(f"{key} {fields},ingest_delay_s={(received_ns - ts) / 1e9!r} {ts}")
        return "\n".join(out).encode()


def _shape_and_encode(point: Point) -> bytes:
    check_shape(point)
    return encode(point)


def pieces(now: int, base_ms: int, n: int = 50_000) -> list[tuple[str, float]]:
    decoder, proto = NativeDecoder(), Prototypes()
    single, arrays = payloads(n, 1, base_ms), payloads(n // 50, 50, base_ms)
    docs = [orjson.loads(m) for m in single]
    points = [p for m in single for p in decoder(TOPIC, m, now).points]
    body = b"\n".join(encode(p) for p in points)
    return [
        ("NativeDecoder, per 1-reading message", per_item_us(
            lambda: [decoder(TOPIC, m, now) for m in single], n)),
        ("  of which Telemetry.model_validate", per_item_us(
            lambda: [Telemetry.model_validate(d) for d in docs], n)),
        ("  of which orjson.loads", per_item_us(lambda: [orjson.loads(m) for m in single], n)),
        ("NativeDecoder, per reading in arrays of 50", per_item_us(
            lambda: [decoder(TOPIC, m, now) for m in arrays], n)),
        ("check_shape + encode, per point", per_item_us(
            lambda: [_shape_and_encode(p) for p in points], n)),
        ("gzip level 6, per point", per_item_us(lambda: gzip.compress(body, 6), n)),
        ("gzip level 1, per point", per_item_us(lambda: gzip.compress(body, 1), n)),
        ("what-if: hand-written check, per reading in arrays", per_item_us(
            lambda: [proto.points(TOPIC, m, now) for m in arrays], n)),
        ("what-if: straight to line protocol, per reading in arrays", per_item_us(
            lambda: [proto.lines(TOPIC, m, now) for m in arrays], n)),
    ]


def b_path(now: int, base_ms: int, messages: int = 2000) -> list[tuple[str, float]]:
    """Decode + encode + gzip of B's load, per reading, by batch size (the collector's
    default of 2,000 messages = 100,000 points, or 5,000 points) and GC setting."""
    decoder, data = NativeDecoder(), payloads(messages, 50, base_ms)

    def run(batch: int) -> None:
        for s in range(0, messages, batch):
            pts = [p for m in data[s:s + batch] for p in decoder(TOPIC, m, now).points]
            gzip.compress(b"\n".join(encode(p) for p in pts), 6)

    out = []
    settings: list[tuple[str, Callable[[], None]]] = [
        ("GC default", lambda: gc.set_threshold(700, 10, 10)),
        ("GC threshold 50000/20/100", lambda: gc.set_threshold(50_000, 20, 100)),
        ("GC off", gc.disable)]
    for label, setup in settings:
        setup()
        for batch in (2000, 100):
            out.append((f"B path, {label}, batches of {batch * 50:,} points",
                        per_item_us(functools.partial(run, batch), messages * 50)))
        gc.enable()
        gc.set_threshold(700, 10, 10)
    return out


def main() -> int:
    now = time.time_ns()
    base_ms = now // 1_000_000 - 10**7
    for label, us in [*pieces(now, base_ms), *b_path(now, base_ms)]:
        print(f"{label:62s} {us:6.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
