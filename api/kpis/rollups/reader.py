"""A reader that answers from rollups what they hold exactly, and from raw points the rest.

It has the raw reader's interface, so the KPI code is the same whichever answers: the proof
that rollups are exact is that every KPI computed through this reader equals the same KPI
computed from raw points (tests/contract/test_rollups.py). The horizon is where rollups end
(`Horizon`): the worker's `complete_until`, never later than the start of the current hour;
without any rollup state everything is read raw. Each answer notes whether it used rollups
(`sources`), which the API reports as the KPI's `source`. One answer is not exact by design:
the 95th percentile of the ingest delay, read off the hourly histograms within their stated
relative error (`ingest.stores.histogram`), which the KPI's formula states.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

from api.kpis.periods import from_ns, midnight
from api.kpis.rollups.cache import ResultCache
from api.kpis.rollups.plan import HOUR_NS, by_days, plan, rollup_field, split_point
from api.kpis.rollups.summary import (
    DAY_HIST_FIELD,
    HIST_FIELD,
    USERS_FIELD,
    USERS_MEASUREMENT,
    add_hist,
    users_of,
)
from api.kpis.rollups.worker import State, read_state
from ingest.model import DELAY_FIELD, EVENT_MEASUREMENT, Point
from ingest.stores.base import (
    Aggregate,
    AggRow,
    DeadLetter,
    Dirty,
    Distinct,
    Histogram,
    HistRow,
    Reader,
    Seen,
    Stat,
    TagFilter,
    ValueRow,
    Values,
    Window,
)
from ingest.stores.histogram import ACCURACY, percentile

_USER_FILTERS = frozenset({"pilot", "service", "type"})


class Horizon:
    """The worker's state as readers see it, read again at most every `ttl_s`."""

    def __init__(self, rollups: Reader, ttl_s: float = 5.0) -> None:
        self.rollups, self.ttl_s = rollups, ttl_s
        self._state: State | None = None
        self._read_at = -math.inf

    async def state(self) -> State | None:
        # Before the first pass, asked every time: the first rollups are used at once.
        if self._state is None or time.monotonic() - self._read_at >= self.ttl_s:
            self._state = await read_state(self.rollups)
            self._read_at = time.monotonic()
        return self._state

    async def until(self) -> int | None:
        """Where rollups end: the worker's `complete_until`, never after the start of the
        current hour (ns); None before the first pass."""
        state = await self.state()
        if state is None:
            return None
        return min(state.complete_until, time.time_ns() // HOUR_NS * HOUR_NS)

    async def layout(self) -> int:
        """What every day point holds (`worker.LAYOUT`); 1 before the first pass."""
        state = await self.state()
        return state.layout if state is not None else 1


# Silent series named in the raw read of their last hour; more are read unfiltered.
NAMED_SILENT = 50


class RollupReader:
    """`raw` and `rollups` are readers (the same store, two namespaces); `timezone(pilot)`
    gives the pilot's zone (local days of the user sets); `accuracy` is the worker's, of the
    delay histograms; `cache` keeps the answers of finished periods (`service.compute_many`
    uses it; None: no caching)."""

    def __init__(self, raw: Reader, rollups: Reader, timezone: Callable[[str], ZoneInfo],
                 horizon: Horizon | None = None, accuracy: float = ACCURACY,
                 cache: ResultCache | None = None) -> None:
        self.raw, self.rollups, self._timezone = raw, rollups, timezone
        self.horizon = horizon or Horizon(rollups)
        self.accuracy, self.cache = accuracy, cache
        self.url_scheme = raw.url_scheme
        self.sources: set[str] = set()

    def scoped(self) -> RollupReader:
        """The same reader with sources of its own (one per KPI answered)."""
        return RollupReader(self.raw, self.rollups, self._timezone, self.horizon,
                            self.accuracy, self.cache)

    # The readers are entered by whoever opened them; what rollups do not hold is raw.
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        return None

    async def ping(self) -> None:
        await self.raw.ping()

    async def last_seen(self, measurements: Sequence[str], field: str, *,
                        start: int | None = None, end: int | None = None,
                        where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        """Exact, and cheap over long history: raw after the horizon (where nearly every
        device is), then for the devices silent since, the hour of their last point from the
        rollups and the point itself from raw, from the earliest such hour on. (A last() over
        all raw history reads every shard of it: 240 ms for a month of a thousand devices.)
        The raw read names the silent series only while they are few: a filter naming a
        thousand devices costs InfluxDB more (170-230 ms) than the unfiltered hours (40 ms)."""
        horizon = await self.horizon.until()
        cut = horizon if horizon is None or end is None else min(end, horizon)
        if cut is None or cut % HOUR_NS or (start is not None and (start % HOUR_NS
                                                                   or start >= cut)):
            self.sources.add("raw")
            return await self.raw.last_seen(measurements, field, start=start, end=end,
                                            where=where, by=by)
        self.sources.add("rollup")

        async def after() -> list[Seen]:
            if end is not None and end <= cut:
                return []
            return await self.raw.last_seen(measurements, field, start=cut, end=end,
                                            where=where, by=by)
        tail, hours = await asyncio.gather(after(), self.rollups.last_seen(
            measurements, rollup_field(field, "count"), start=start, end=cut, where=where,
            by=by))
        found = {s.order(): s for s in tail}
        rolled = [s for s in hours if s.order() not in found]
        if rolled:
            silent = where if len(rolled) > NAMED_SILENT else (
                *where, ("pilot", tuple({s.pilot for s in rolled})),
                ("gateway", tuple({s.gateway for s in rolled})),
                ("device", tuple({s.device for s in rolled})))
            wanted = {s.order() for s in rolled}
            for s in await self.raw.last_seen(measurements, field,
                                              start=min(s.ts for s in rolled), end=cut,
                                              where=silent, by=by):
                if s.order() in wanted:
                    found[s.order()] = s
        return sorted(found.values(), key=Seen.order)

    async def first_seen(self, measurements: Sequence[str], field: str, *,
                         start: int | None = None, end: int | None = None,
                         where: TagFilter = (), by: tuple[str, ...] = ()) -> list[Seen]:
        """From the rollups' `<field>__count` before the horizon, to the hour (a rollup point
        carries its hour's start); raw after it, for the series the rollups do not hold."""
        horizon = await self.horizon.until()
        cut = horizon if horizon is None or end is None else min(end, horizon)
        if cut is None or (start is not None and (start % HOUR_NS or start >= cut)):
            self.sources.add("raw")
            return await self.raw.first_seen(measurements, field, start=start, end=end,
                                             where=where, by=by)
        self.sources.add("rollup")
        rolled = await self.rollups.first_seen(measurements, rollup_field(field, "count"),
                                               start=start, end=cut, where=where, by=by)
        keys = {s.order() for s in rolled}
        tail = [] if end is not None and end <= cut else await self.raw.first_seen(
            measurements, field, start=cut, end=end, where=where, by=by)
        return sorted(rolled + [s for s in tail if s.order() not in keys], key=Seen.order)

    async def latest(self, measurement: str, *, where: TagFilter = ()) -> list[Point]:
        return await self.raw.latest(measurement, where=where)

    async def values(self, query: Values) -> list[ValueRow]:
        return await self.raw.values(query)

    async def measurements(self) -> list[str]:
        return await self.raw.measurements()

    async def dead_letters(self, *, reason: str | None = None, since: int | None = None,
                           limit: int = 100) -> list[DeadLetter]:
        return await self.raw.dead_letters(reason=reason, since=since, limit=limit)

    async def fields(self) -> dict[str, list[str]]:
        return await self.raw.fields()

    async def dirty(self, since: int | None = None) -> list[Dirty]:
        return await self.raw.dirty(since)

    async def histogram(self, query: Histogram) -> list[HistRow]:
        return await self.raw.histogram(query)

    async def aggregate(self, query: Aggregate) -> list[AggRow]:
        horizon = await self.horizon.until()
        if query.stat is Stat.COUNT_DISTINCT and horizon is not None:
            counted = await self._count_users(query, horizon)
            if counted is not None:
                return counted
        if query.stat is Stat.P95 and horizon is not None:
            delays = await self._delay_percentile(query, horizon)
            if delays is not None:
                return delays
        found = plan(query, horizon, self._zone(query.where), await self.horizon.layout()
                     ) if horizon is not None else None
        if found is None:
            self.sources.add("raw")
            return await self.raw.aggregate(query)
        self.sources.add("rollup")
        # The sides' queries at once (a handful: parts times sides): the store answers them
        # side by side while this process reads the answers.
        answers = await asyncio.gather(*(
            (self.raw if side.raw else self.rollups).aggregate(q)
            for side in found.sides for _, q in side.queries))
        it = iter(answers)
        return found.finish([[next(it) for _ in side.queries] for side in found.sides])

    def _zone(self, where: TagFilter) -> ZoneInfo | None:
        """The zone of the one pilot `where` keeps, whose day rollups follow its local days;
        None for several pilots or none (hour rollups answer)."""
        pilots = dict(where).get("pilot", ())
        return self._timezone(pilots[0]) if len(pilots) == 1 else None

    async def distinct(self, query: Distinct) -> list[set[str]]:
        horizon = await self.horizon.until()
        days = self._day_cut(query.measurement, query.field, query.where, query.windows,
                             horizon)
        if days is None:
            self.sources.add("raw")
            return await self.raw.distinct(query)
        self.sources.add("rollup")
        return await self._users(query, days)

    async def _delay_percentile(self, query: Aggregate, horizon: int) -> list[AggRow] | None:
        """The delay P95 per window and measurement from the day and hour histograms, the hours
        after the horizon counted from raw points; None when histograms cannot answer
        (another field or filter, groups, windows not starting on a whole hour)."""
        if (query.field != DELAY_FIELD or query.by or query.inner is not None
                or query.every_s is not None or query.prefix is not None
                or any(key != "pilot" for key, _ in query.where)):
            return None
        cuts = [split_point(w, horizon, query) for w in query.windows]
        heads = [(i, (lo, cut)) for i, ((lo, _), cut) in enumerate(zip(query.windows, cuts,
                                                                        strict=True)) if cut > lo]
        if not heads:
            return None
        self.sources.add("rollup")
        # Whole local days from the day histograms, the hours around them from the hours'.
        zone = self._zone(query.where)
        pieces: dict[str, list[tuple[int, Window]]] = {DAY_HIST_FIELD: [], HIST_FIELD: []}
        for i, head in heads:
            span, around = by_days(head, zone)
            pieces[DAY_HIST_FIELD] += [(i, span)] if span is not None else []
            pieces[HIST_FIELD] += [(i, w) for w in around]
        asked = [(m, field, got) for m in query.measurements
                 for field, got in pieces.items() if got]
        rolled = await asyncio.gather(*(self.rollups.distinct(Distinct(
            m, field, tuple(w for _, w in got), query.where)) for m, field, got in asked))
        counts: dict[tuple[int, str], dict[int, int]] = {}
        for (measurement, _, got), sets in zip(asked, rolled, strict=True):
            for (i, _), texts in zip(got, sets, strict=True):
                for text in texts:
                    add_hist(counts.setdefault((i, measurement), {}), text)
        tails = [(i, (cut, hi)) for i, ((_, hi), cut) in enumerate(zip(query.windows, cuts,
                                                                        strict=True)) if hi > cut]
        if tails:
            for r in await self.raw.histogram(Histogram(
                    query.measurements, query.field, tuple(w for _, w in tails), query.where,
                    self.accuracy)):
                have = counts.setdefault((tails[r.window][0], r.measurement), {})
                have[r.bucket] = have.get(r.bucket, 0) + r.count
        rows = [AggRow(i, m, (), value, query.windows[i][0]) for (i, m), found
                in sorted(counts.items())
                if (value := percentile(found, 95, self.accuracy)) is not None]
        return rows

    async def _count_users(self, query: Aggregate, horizon: int) -> list[AggRow] | None:
        if query.by or query.inner is not None or len(query.measurements) != 1:
            return None
        days = self._day_cut(query.measurements[0], query.field, query.where, query.windows,
                             horizon)
        if days is None:
            return None
        self.sources.add("rollup")
        sets = await self._users(Distinct(query.measurements[0], query.field, query.windows,
                                          query.where), days)
        return [AggRow(i, query.measurements[0], (), float(len(s)), query.windows[i][0])
                for i, s in enumerate(sets) if s]

    def _day_cut(self, measurement: str, field: str, where: TagFilter,
                 windows: Sequence[Window], horizon: int | None) -> list[int] | None:
        """Per window, where its whole local days from rollups end (the rest is raw); None
        when day sets cannot answer (another field, another filter, unaligned windows)."""
        if horizon is None or measurement != EVENT_MEASUREMENT or field != "user":
            return None
        filters = dict(where)
        if not set(filters) <= _USER_FILTERS or len(filters.get("pilot", ())) != 1:
            return None
        tz = self._timezone(filters["pilot"][0])
        cuts: list[int] = []
        for lo, hi in windows:
            if midnight(from_ns(lo, tz).date(), tz) != lo:
                return None
            cut = min(hi, horizon)
            cut = midnight(from_ns(cut, tz).date(), tz)  # back to a local midnight
            cuts.append(max(lo, cut))
        return cuts if any(c > lo for c, (lo, _) in zip(cuts, windows, strict=True)) else None

    async def _users(self, query: Distinct, cuts: list[int]) -> list[set[str]]:
        heads = [(lo, cut) for (lo, _), cut in zip(query.windows, cuts, strict=True)]
        tails = [(cut, hi) for (_, hi), cut in zip(query.windows, cuts, strict=True)]
        out: list[set[str]] = [set() for _ in query.windows]
        rolled_at = [i for i, (lo, hi) in enumerate(heads) if hi > lo]
        if rolled_at:
            chunks = await self.rollups.distinct(Distinct(
                USERS_MEASUREMENT, USERS_FIELD, tuple(heads[i] for i in rolled_at),
                query.where))
            for i, found in zip(rolled_at, chunks, strict=True):
                out[i] |= users_of(found)
        raw_at = [i for i, (lo, hi) in enumerate(tails) if hi > lo]
        if raw_at:
            sets = await self.raw.distinct(Distinct(
                query.measurement, query.field, tuple(tails[i] for i in raw_at), query.where))
            for i, found in zip(raw_at, sets, strict=True):
                out[i] |= found
        return out
