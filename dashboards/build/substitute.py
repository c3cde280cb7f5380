"""What Grafana does to a query before the InfluxDB data source sends it, done here.

Template variables (`$pilot`, `${pilot}`, `[[pilot]]`) become their values the way the
InfluxDB data source formats them: a single-valued variable as the raw value, a multi-value
or "All" variable as a regex group of regex-escaped values (`(gw-01|gw-02)`). Macros
(`$timeFilter`, `$__interval`, `${__from}`, `${__to:date:iso}`, `$__range_s`, ...) become
the time range.
Pure text in, text out: `check.py` runs the result against InfluxDB.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

_TOKEN = re.compile(r"\$\{(\w+)(?::([\w:-]+))?\}|\[\[(\w+)\]\]|\$(\w+)")
_REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_STEPS_S = ((1, "1s"), (5, "5s"), (10, "10s"), (15, "15s"), (30, "30s"), (60, "1m"),
            (300, "5m"), (600, "10m"), (900, "15m"), (1800, "30m"), (3600, "1h"),
            (10800, "3h"), (21600, "6h"), (43200, "12h"), (86400, "1d"), (604800, "1w"))
MACROS = frozenset({"timeFilter", "__interval", "__interval_ms", "interval", "__from", "__to",
                    "__range", "__range_s", "__range_ms"})
_DURATION = re.compile(r"^now(?:-(\d+)([smhdwy]))?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31_536_000}


@dataclass(frozen=True, slots=True)
class TimeRange:
    from_ms: int
    to_ms: int
    min_interval_s: int = 0  # a panel's "Min interval" (its `interval`, e.g. `1h`)

    @classmethod
    def relative(cls, start: str, end: str, now_ms: int) -> TimeRange:
        """A dashboard's `time` (`now-7d` .. `now`) at `now_ms`."""
        return cls(now_ms - _span_ms(start), now_ms - _span_ms(end))

    def of_panel(self, panel: Mapping[str, object]) -> TimeRange:
        """The range as a panel sees it: with the panel's min interval, if it has one."""
        interval = panel.get("interval")
        if not interval:
            return self
        return replace(self, min_interval_s=_span_ms(f"now-{interval}") // 1000)

    @property
    def interval_s(self) -> int:
        """`$__interval`: about a thousand points over the range, on a round step, at least
        the panel's min interval."""
        wanted = max((self.to_ms - self.from_ms) / 1000 / 1000, self.min_interval_s)
        return next((s for s, _ in _STEPS_S if s >= wanted), _STEPS_S[-1][0])

    def interval(self) -> str:
        return dict(_STEPS_S)[self.interval_s]


def _span_ms(text: str) -> int:
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"unsupported relative time {text!r} (use now or now-<n><unit>)")
    amount, unit = match.groups()
    return 0 if amount is None else int(amount) * _UNIT_S[unit] * 1000


@dataclass(frozen=True, slots=True)
class Value:
    """A variable's current value(s); `multi` when it is a multi-value or "All" variable."""

    values: tuple[str, ...]
    multi: bool = False


def _escape(value: str) -> str:
    return _REGEX_SPECIAL.sub(lambda m: "\\" + m.group(0), value)


def format_value(value: Value) -> str:
    if not value.multi:
        return value.values[0] if value.values else ""
    escaped = [_escape(v) for v in value.values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _macro(name: str, fmt: str | None, rng: TimeRange) -> str:
    span = rng.to_ms - rng.from_ms
    if name == "timeFilter":
        return f"time >= {rng.from_ms}ms and time <= {rng.to_ms}ms"
    if name in ("__interval", "interval"):
        return rng.interval()
    if name == "__interval_ms":
        return str(rng.interval_s * 1000)
    if name in ("__from", "__to"):
        ms = rng.from_ms if name == "__from" else rng.to_ms
        return _iso(ms) if fmt and fmt.startswith("date") else str(ms)
    return {"__range": f"{span // 1000}s", "__range_s": str(span // 1000),
            "__range_ms": str(span)}[name]


def references(text: str) -> set[str]:
    """The variable names a text refers to (macros excluded)."""
    names = {next(g for g in (m.group(1), m.group(3), m.group(4)) if g)
             for m in _TOKEN.finditer(text)}
    return names - MACROS


def interpolate(text: str, values: Mapping[str, Value], rng: TimeRange) -> str:
    """`text` with every macro and every known variable replaced; unknown ones stay."""
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(3) or match.group(4)
        if name in MACROS:
            return _macro(name, match.group(2), rng)
        if name in values:
            return format_value(values[name])
        return match.group(0)

    return _TOKEN.sub(replace, text)
