"""SensorThings Observations: a Datastream's points, read from the store page by page.

An Observation's id is its Datastream's id x 10^13 + its time in milliseconds since the epoch
(`OBS_SCALE`): numeric, the same after a restart, and it names the point to read back. Two
points of one series in the same millisecond share an id (the first is answered). Ids reach
about 9 x 10^18 for a millionth Datastream: beyond a JavaScript number's exact range from the
901st Datastream on, within a 64-bit integer for every Datastream a registry can hold.

Newest first by default (`$orderby=phenomenonTime asc` turns it round; no other order is
served). Bounds on `phenomenonTime` joined by `and` go into the store query; everything else
in `$filter` is checked point by point, over at most `MAX_SCAN` points per request. Service
use is `api.open.usage`'s suppressed daily cells over the filtered days (at most 366; the last
`USAGE_DAYS` by default), a suppressed day's result null with `resultQuality` "c" (a cell's
suppression depends on it alone, so no choice of days shows more).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from api.kpis.periods import NS, Grain, buckets, from_ns, midnight
from api.open.sta.entities import Model, Source
from api.open.sta.odata import (
    Bool,
    Cmp,
    Lit,
    Node,
    ODataError,
    Options,
    Prop,
    Time,
    matches,
    time_bounds,
)
from api.open.suppression import FLAG, suppress
from api.open.usage import counts
from ingest.stores.base import ALL_TIME, Aggregate, Reader, Stat, Values

OBS_SCALE = 10**13
MAX_SCAN = 200_000
CHUNK = 2000
USAGE_DAYS = 30
MAX_USAGE_DAYS = 366
DAY_NS = 86400 * NS


@dataclass(frozen=True, slots=True)
class Observation:
    id: int
    datastream: int
    foi: int
    start_ns: int
    end_ns: int | None  # an interval's end (usage days)
    result: float | int | None
    quality: str | None = None

    def props(self) -> dict[str, Any]:
        start = _time(self.start_ns)
        phenomenon = start if self.end_ns is None else f"{start}/{_time(self.end_ns)}"
        body: dict[str, Any] = {"phenomenonTime": phenomenon,
                                "resultTime": _time(self.end_ns or self.start_ns),
                                "result": self.result}
        if self.quality is not None:
            body["resultQuality"] = self.quality
        return body

    def fields(self) -> dict[str, Any]:
        """What `$filter` compares: times as `Time`."""
        return {"phenomenonTime": Time(self.start_ns),
                "resultTime": Time(self.end_ns or self.start_ns), "result": self.result,
                "resultQuality": self.quality, "id": self.id, "@iot.id": self.id}


def _time(ns: int) -> str:
    return from_ns(ns).isoformat().replace("+00:00", "Z")


def decode(number: int) -> tuple[int, int]:
    """(Datastream id, time in ms) of an Observation id."""
    return divmod(number, OBS_SCALE)


def _exact(node: Node | None) -> bool:
    """Whether the store's time window alone decides the filter (nothing left to check)."""
    if node is None:
        return True
    conjuncts = list(node.args) if isinstance(node, Bool) and node.op == "and" else [node]
    for c in conjuncts:
        if not isinstance(c, Cmp) or c.op == "ne":
            return False
        sides = {type(c.left), type(c.right)}
        prop = c.left if isinstance(c.left, Prop) else c.right
        lit = c.right if isinstance(c.right, Lit) else c.left
        if sides != {Prop, Lit} or not isinstance(prop, Prop) or not isinstance(lit, Lit) \
                or prop.path != ("phenomenonTime",) or not isinstance(lit.value, Time):
            return False
    return True


class Reading:
    """The Observations of some Datastreams of a model, for one request."""

    def __init__(self, store: Reader, model: Model, streams: list[int], options: Options,
                 tz_of: dict[str, Any]) -> None:
        self.store, self.model, self.options, self.tz_of = store, model, options, tz_of
        self.streams = streams
        desc = True
        for name, descending in options.orderby:
            if name != "phenomenonTime":
                raise ODataError("Observations are ordered by phenomenonTime only")
            desc = descending
        self.desc = desc
        lo, hi = time_bounds(options.filter, "phenomenonTime")
        self.window = (ALL_TIME[0] if lo is None else lo, ALL_TIME[1] if hi is None else hi)
        self.exact = _exact(options.filter)
        self.scanned = 0

    def _groups(self) -> dict[tuple[str, str], list[int]]:
        groups: dict[tuple[str, str], list[int]] = defaultdict(list)
        for d in self.streams:
            source = self.model.sources[d]
            groups[("usage" if source.usage else source.kind, source.metric)].append(d)
        return groups

    async def page(self) -> tuple[list[Observation], int | None, bool]:
        """The page asked for, the count when asked (`$count`), and whether more follow."""
        o = self.options
        need = o.skip + o.top + 1
        found: list[Observation] = []
        groups = self._groups()
        single = len(self.streams) == 1 and not self.model.sources[self.streams[0]].usage
        if single and self.exact:
            rows = await self._fetch(self.streams, o.top + 1, o.skip)
            found, skip = rows, 0
        else:
            for (kind, _), streams in groups.items():
                found += await (self._usage(streams) if kind == "usage"
                                else self._scan(streams, need))
            found.sort(key=lambda x: (x.start_ns, x.datastream), reverse=self.desc)
            skip = o.skip
        page = found[skip:skip + o.top]
        more = len(found) > skip + o.top
        total = await self._count(groups) if o.count else None
        return page, total, more

    def _where(self, streams: list[int]) -> tuple[tuple[str, tuple[str, ...]], ...]:
        sources = [self.model.sources[d] for d in streams]
        return tuple((key, tuple(sorted({getattr(s, key) for s in sources})))
                     for key in ("pilot", "gateway", "device"))

    async def _fetch(self, streams: list[int], limit: int, offset: int) -> list[Observation]:
        """Points of these Datastreams (one kind and metric) from `offset`, the ones of
        other devices the tag filter lets through left out."""
        first = self.model.sources[streams[0]]
        wanted = {(s.pilot, s.gateway, s.device): d for d in streams
                  for s in [self.model.sources[d]]}
        rows = await self.store.values(Values(first.kind, first.metric, self.window,
                                              self._where(streams), not self.desc, limit,
                                              offset))
        self.scanned += len(rows)
        out = []
        for r in rows:
            d = wanted.get((r.pilot, r.gateway, r.device))
            if d is not None:
                out.append(Observation(d * OBS_SCALE + r.ts // 10**6, d, self.model.foi[d],
                                       r.ts, None, r.value))
        return out

    async def _scan(self, streams: list[int], need: int) -> list[Observation]:
        """Up to `need` matching Observations, in order, chunk by chunk."""
        out: list[Observation] = []
        offset = 0
        node = self.options.filter
        while len(out) < need:
            limit = min(max(need - len(out), CHUNK), 10_000)
            rows_before = self.scanned
            chunk = await self._fetch(streams, limit, offset)
            got = self.scanned - rows_before
            out += [x for x in chunk if node is None or matches(node, x.fields())]
            offset += got
            if got < limit:
                break
            if self.scanned > MAX_SCAN:
                raise ODataError(f"this request would read more than {MAX_SCAN} points: "
                                 "narrow it with $filter on phenomenonTime")
        return out[:need]

    async def _usage(self, streams: list[int]) -> list[Observation]:
        """The suppressed daily cells of these usage Datastreams in the window (a cell's
        suppression is its own: it reads the same whatever days are asked for)."""
        out: list[Observation] = []
        by_pilot: dict[str, list[int]] = defaultdict(list)
        for d in streams:
            by_pilot[self.model.sources[d].pilot].append(d)
        for pilot, mine in by_pilot.items():
            tz = self.tz_of[pilot]
            lo, hi = self._days(tz)
            if hi <= lo:
                continue
            days = [(from_ns(b.lo, tz).date().isoformat(), b.lo, b.hi)
                    for b in buckets(lo, hi, Grain.DAY, tz)]
            cells, totals = await counts(self.store, pilot, days, lo, hi)
            shown, _ = suppress(cells, totals, self.model.sources[mine[0]].min_users)
            bounds = {day: (a, b) for day, a, b in days}
            for d in mine:
                service = self._service(d)
                out += [_day(d, self.model.foi[d], bounds[day], self.model.sources[d], p)
                        for (day, s), p in shown.items() if s == service]
        node = self.options.filter
        return [x for x in out if node is None or matches(node, x.fields())]

    def _service(self, datastream: int) -> str:
        return str(self.model.sets["Datastreams"][datastream].props["properties"]["service"])

    def _days(self, tz: Any) -> tuple[int, int]:
        """[lo, hi) from local midnight to local midnight around the filter's window, up to
        the end of today; the last USAGE_DAYS by default, at most MAX_USAGE_DAYS."""
        today = from_ns(time.time_ns(), tz).date()
        end = midnight(today + timedelta(days=1), tz)
        hi = min(self.window[1], end)
        if hi < end:  # round up to the next local midnight
            hi = midnight(from_ns(hi - 1, tz).date() + timedelta(days=1), tz)
        lo = self.window[0] if self.window[0] != ALL_TIME[0] else hi - USAGE_DAYS * DAY_NS
        lo = max(lo, hi - MAX_USAGE_DAYS * DAY_NS)
        return midnight(from_ns(lo, tz).date(), tz), hi

    async def one(self, number: int) -> Observation | None:
        """The Observation of this id, None when there is none the model shows."""
        datastream, ms = decode(number)
        if datastream not in self.model.sources:
            return None
        self.window, self.desc = (ms * 10**6, (ms + 1) * 10**6), False
        if self.model.sources[datastream].usage:
            found = [x for x in await self._usage([datastream]) if x.id == number]
        else:
            found = await self._fetch([datastream], 1, 0)
        return found[0] if found else None

    async def _count(self, groups: dict[tuple[str, str], list[int]]) -> int:
        if not self.exact:
            total = 0
            for (kind, _), streams in groups.items():
                total += len(await (self._usage(streams) if kind == "usage"
                                    else self._scan(streams, MAX_SCAN + 1)))
            return total
        total = 0
        for (kind, metric), streams in groups.items():
            if kind == "usage":
                total += len(await self._usage(streams))
                continue
            wanted = {(s.pilot, s.gateway, s.device) for d in streams
                      for s in [self.model.sources[d]]}
            rows = await self.store.aggregate(Aggregate(
                (kind,), metric, Stat.COUNT, (self.window,), by=("pilot", "gateway", "device"),
                where=self._where(streams)))
            total += sum(int(r.value) for r in rows
                         if (r.tag("pilot"), r.tag("gateway"), r.tag("device")) in wanted)
        return total


def _day(datastream: int, foi: int, bounds: tuple[int, int], source: Source,
         published: Any) -> Observation:
    value = published.uses if source.metric == "uses" else published.users
    hidden = value == FLAG
    return Observation(datastream * OBS_SCALE + bounds[0] // 10**6, datastream, foi,
                       bounds[0], bounds[1], None if hidden else int(value),
                       FLAG if hidden else None)
