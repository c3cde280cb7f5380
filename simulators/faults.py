"""Fault injection: what goes wrong between a sensor and the broker, at a configured rate.

A fraction of the scheduled messages carries a fault, drawn from a weighted mix of the kinds
that apply to the message's channel (a spike needs sensor values; a battery needs a battery):

dropout        the message is lost: nothing is sent
stuck          a frozen sensor repeats its previous values
spike          one value jumps (still inside its plausible range: stored)
out_of_range   one value is outside the registry's range: a dead letter
duplicate      the message is sent twice: one stored point
out_of_order   the message arrives after its device's next message
clock_skew     the device clock is off by up to two minutes (stored at the skewed time), or
               was reset to 1970 (a dead letter)
malformed      the payload is broken (truncated, not UTF-8, NaN, wrong types, ...): a dead letter
silence        the device goes quiet: its next 5-30 messages are lost
battery_drain  (a status message) the battery drops and drains fast; the device dies (its last
               status says `offline`) and is silent until a technician replaces the battery

Each helper here is pure: it gets the device's random generator and returns new data. Skewed
timestamps never land on another timestamp of the same series, so a point is never merged away.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson

from ingest import units
from simulators.summary import EVENT, STATUS, TELEMETRY


class Fault(StrEnum):
    DROPOUT = "dropout"
    STUCK = "stuck"
    SPIKE = "spike"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"
    OUT_OF_ORDER = "out_of_order"
    CLOCK_SKEW = "clock_skew"
    MALFORMED = "malformed"
    SILENCE = "silence"
    BATTERY_DRAIN = "battery_drain"


DEFAULT_WEIGHTS: Mapping[Fault, float] = {
    Fault.DROPOUT: 3.0, Fault.STUCK: 1.5, Fault.SPIKE: 1.5, Fault.OUT_OF_RANGE: 1.0,
    Fault.DUPLICATE: 2.0, Fault.OUT_OF_ORDER: 2.0, Fault.CLOCK_SKEW: 2.0, Fault.MALFORMED: 1.5,
    Fault.SILENCE: 0.5, Fault.BATTERY_DRAIN: 0.5,
}
_APPLIES: Mapping[str, frozenset[Fault]] = {
    TELEMETRY: frozenset(Fault) - {Fault.BATTERY_DRAIN},
    EVENT: frozenset(Fault) - {Fault.STUCK, Fault.SPIKE, Fault.OUT_OF_RANGE, Fault.BATTERY_DRAIN},
    STATUS: frozenset(Fault) - {Fault.STUCK, Fault.SPIKE},
}
MAX_SKEW_MS = 120_000  # well inside the collector's 300 s future limit
SILENCE_MESSAGES = (5, 30)  # a silent device loses this many of its next messages
DEAD_STATUS_TICKS = (2, 6)  # a dead battery is replaced after this many status intervals
RTC_RESET_SHARE = 0.1


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """`fraction`: the share of scheduled messages that carry a fault; `weights`: the mix."""

    fraction: float = 0.0
    weights: Mapping[Fault, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def __post_init__(self) -> None:
        if not 0.0 <= self.fraction <= 1.0:
            raise ValueError(f"fault fraction {self.fraction} is not between 0 and 1")
        if any(w < 0 for w in self.weights.values()) or not any(self.weights.values()):
            raise ValueError("fault weights must be >= 0, and at least one > 0")

    @classmethod
    def parse_weights(cls, text: str) -> dict[Fault, float]:
        """`dropout=3,spike=1`: the named faults with these weights, the others off."""
        weights = dict.fromkeys(Fault, 0.0)
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = item.partition("=")
            try:
                weights[Fault(name.strip())] = float(value)
            except ValueError:
                raise ValueError(f"{item!r} is not <fault>=<weight> with a fault among "
                                 f"{', '.join(Fault)}") from None
        return weights


Table = tuple[list[float], list[Fault]]  # cumulative weights, faults


@functools.cache
def _tables(weights: tuple[tuple[Fault, float], ...], on_battery: bool) -> dict[str, Table]:
    """Per channel, the faults that apply and their cumulative weights (shared by devices)."""
    mix = dict(weights)
    tables: dict[str, Table] = {}
    for channel, kinds in _APPLIES.items():
        usable = [f for f in Fault if f in kinds and mix.get(f, 0.0) > 0
                  and (on_battery or f is not Fault.BATTERY_DRAIN)]
        tables[channel] = (list(itertools.accumulate(mix[f] for f in usable)), usable)
    return tables


class FaultPlan:
    """One device's fault draw: the probability per message, and the mix per channel."""

    def __init__(self, spec: FaultSpec, on_battery: bool, per_tick: float,
                 ticks_per_status: float) -> None:
        """`per_tick`: the device's messages per tick of its main stream (status included);
        `ticks_per_status`: main-stream ticks per status message."""
        self._tables = _tables(tuple(sorted(spec.weights.items())), on_battery)
        # A silence, and a battery that died, suppress the messages after the one that caused
        # it; those count as faulty too, so draw less often to keep the configured share.
        silence = self._share(TELEMETRY, Fault.SILENCE) * (sum(SILENCE_MESSAGES) / 2 - 1.0)
        status_share = 1.0 / max(1.0, ticks_per_status * per_tick)
        dead = self._share(STATUS, Fault.BATTERY_DRAIN) * status_share \
            * sum(DEAD_STATUS_TICKS) / 2 * ticks_per_status * per_tick
        f = spec.fraction
        self.probability = f / (1.0 + (silence + dead) * (1.0 - f)) if f > 0 else 0.0

    def _share(self, channel: str, fault: Fault) -> float:
        cumulative, usable = self._tables[channel]
        if fault not in usable:
            return 0.0
        i = usable.index(fault)
        return (cumulative[i] - (cumulative[i - 1] if i else 0.0)) / cumulative[-1]

    def draw(self, rng: random.Random, channel: str) -> Fault | None:
        if self.probability == 0.0 or rng.random() >= self.probability:
            return None
        cumulative, usable = self._tables[channel]
        if not usable:
            return None
        return usable[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]


def spike(rng: random.Random, values: dict[str, float]) -> dict[str, float]:
    """One value jumps 3-8 times higher, capped at the top of its plausible range."""
    out = dict(values)
    name = rng.choice(sorted(out))
    metric = units.lookup(name)
    high = metric.high if metric else 1e6
    jumped = out[name] * rng.uniform(3.0, 8.0) if out[name] > 0 else high * 0.05
    out[name] = round(min(jumped, high), 3)
    return out


def out_of_range(rng: random.Random, doc: dict[str, Any], channel: str) -> dict[str, Any]:
    """A copy of the payload with one registered value outside its plausible range."""
    out = dict(doc)
    if channel == STATUS:
        if "battery" in out and rng.random() < 0.5:
            out["battery"] = round(1.05 + rng.random(), 3)  # a percentage sent as a fraction
        else:
            out["rssi"] = round(25.0 + 50.0 * rng.random(), 1)
        return out
    values = dict(out["values"])
    name = rng.choice(sorted(values))
    metric = units.lookup(name)
    assert metric is not None, f"{name} is not in the registry"
    span = metric.high - metric.low
    if rng.random() < 0.5:
        values[name] = round(metric.high + span * (0.5 + rng.random()), 3)
    else:
        values[name] = round(metric.low - max(1.0, span * (0.1 + rng.random())), 3)
    out["values"] = values
    return out


_NAN = "__nan__"


def malformed(rng: random.Random, doc: dict[str, Any], channel: str) -> bytes:
    """A broken payload that a correct collector rejects as exactly one dead letter."""
    variant = rng.randrange(8)
    out = dict(doc)
    key = {TELEMETRY: "values", EVENT: "value", STATUS: "rssi"}[channel]
    if variant == 0:  # truncated in flight: no prefix of a JSON object is JSON
        raw = orjson.dumps(doc)
        return raw[: max(1, len(raw) // 2)]
    if variant == 1:  # a byte that is not UTF-8, inside the first key
        return orjson.dumps(doc).replace(b'"ts"', b'"t\xffs"', 1)
    if variant in (2, 3):  # NaN (not JSON at all), or a number sent as a string
        bad = _NAN if variant == 2 else "12.5"
        if channel == TELEMETRY:
            out["values"] = {**doc["values"], next(iter(doc["values"])): bad}
        else:
            out[key] = bad
        raw = orjson.dumps(out)
        return raw.replace(f'"{_NAN}"'.encode(), b"NaN")
    if variant == 4:  # an invalid name or enum value
        field_name, value = {TELEMETRY: ("kind", "Air Quality"), EVENT: ("service", "Bike Share"),
                             STATUS: ("state", "rebooting")}[channel]
        out[field_name] = value
    elif variant == 5 and channel == STATUS:  # every status field is optional (a status
        out["ts"] = "yesterday"                 # of ts alone is a heartbeat): an unreadable ts
    elif variant == 5:  # a required part missing
        drop = {TELEMETRY: ("values",), EVENT: ("type",)}[channel]
        out = {k: v for k, v in doc.items() if k not in drop}
    elif variant == 6:  # a field the contract does not have
        out["firmware"] = "2.4.1"
    else:  # not an object at all: a gateway's error text
        return b"ERROR sensor timeout"
    return orjson.dumps(out)


def skewed(rng: random.Random, ts: int, window: tuple[int, int], taken: set[int],
           regular: Callable[[int], bool]) -> int | None:
    """A timestamp up to two minutes off `ts` that no regular message of the series has and
    no other skewed one took; None when the series leaves no room (a 1 ms grid)."""
    lo, hi = window
    for _ in range(16):
        t = ts + round(rng.uniform(1_000, MAX_SKEW_MS)) * (1 if rng.random() < 0.5 else -1)
        if regular(t):
            t += 1
        if lo <= t < hi and t not in taken and not regular(t):
            if len(taken) > 256:
                stale = ts - 2 * MAX_SKEW_MS
                taken.difference_update([x for x in taken if x < stale])
            taken.add(t)
            return t
    return None


def rtc_reset(rng: random.Random) -> int:
    """A clock that restarted at the epoch: milliseconds of uptime, long before 2000."""
    return rng.randint(5_000, 40 * 86_400_000)
