"""The rollup worker: keeps the rollups equal to what raw points say, late data included.

Every write to the store marks the (pilot, UTC hour) slots it touched, before the points land
(`Store.write`; a mark without data costs a recompute, data without a mark would be missed).
A pass reads the marks made since the last pass (less a margin for a write still in flight),
recomputes exactly those slots that have ended from raw points, then the local days that hold
them (their user sets from raw points, their day rollups from the hours' rollups just
written), and rewrites their rollup points (the same points
again: idempotent, so two workers may run at once). Then it advances its state:
`watermark`, the newest mark it has handled, and `complete_until`, the hour before which
every ended hour is rolled up, which is the readers' horizon. The hour in progress is never
rolled up: readers read it raw, so a reading counts in KPIs the moment it is stored. A late
write into an ended hour shows in KPIs at the next pass (one interval, 60 s by default).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from api.kpis.periods import from_ns, midnight
from api.kpis.rollups.cache import change_point
from api.kpis.rollups.plan import HOUR_NS
from api.kpis.rollups.summary import (
    day_delay_points,
    day_points,
    delay_points,
    hour_points,
    user_points,
)
from ingest.model import DEAD_LETTER_MEASUREMENT, DELAY_FIELD, STATUS_MEASUREMENT, Point
from ingest.stores.base import ALL_TIME, Aggregate, Reader, Stat, Store, StoreUnavailable
from ingest.stores.histogram import ACCURACY

log = logging.getLogger(__name__)
STATE_MEASUREMENT = "rollup_state"
# How long after its mark a write may still land: the InfluxDB writer's retry deadline and
# its mark cache (a slot is re-marked at most every few seconds). A slot recomputed sooner
# than this after its newest mark is recomputed again at the next pass.
IN_FLIGHT_NS = 120 * 10**9
BATCH_HOURS = 24 * 7  # hours recomputed per group of queries
REBUILD_SLICE_NS = BATCH_HOURS * HOUR_NS  # history a rebuild reads at a time


# What rollup points hold: 1, hours and days; 2, days also hold their hours with data and the
# segment sums of levels (a reader uses those only when every day was computed so: by a
# fresh worker, or a --rebuild of everything).
LAYOUT = 2


@dataclass(frozen=True, slots=True)
class State:
    watermark: int  # ns: marks older than this (less IN_FLIGHT_NS) are handled
    complete_until: int  # ns: every ended hour before this is rolled up (readers' horizon)
    passed_at: int  # ns: when the last pass began
    layout: int = LAYOUT  # of every day point before complete_until (see LAYOUT)

    def point(self) -> Point:
        # Strings keep the nanoseconds exact (a float field would round them).
        return Point(STATE_MEASUREMENT, (), {"watermark": str(self.watermark),
                                             "complete_until": str(self.complete_until),
                                             "passed_at": str(self.passed_at),
                                             "layout": str(self.layout)}, 0)

    def lag_s(self, now_ns: int) -> float:
        """How stale rollups can be for data already stored: the time since the last pass."""
        return max(0.0, (now_ns - self.passed_at) / 1e9)


@dataclass(frozen=True, slots=True)
class Pass:
    slots: int  # (pilot, hour) slots recomputed
    days: int  # (pilot, local day) user sets recomputed
    state: State


async def read_state(rollups: Reader) -> State | None:
    points = await rollups.latest(STATE_MEASUREMENT)
    if not points:
        return None
    fields = points[0].fields
    n = {key: int(str(value)) for key, value in fields.items()}
    return State(n["watermark"], n["complete_until"], n["passed_at"], n.get("layout", 1))


def local_days(hours: Iterable[int], tz: ZoneInfo) -> list[tuple[int, int]]:
    """The local days (lo, hi) that hold the given hour starts."""
    out = set()
    for hour in hours:
        day = from_ns(hour, tz).date()
        out.add((midnight(day, tz), midnight(day + timedelta(days=1), tz)))
    return sorted(out)


class Worker:
    """`raw` reads points and dirty marks; `out` writes and `rollups` reads the rollup
    namespace; `timezone` gives a pilot's zone (the registry's, UTC when unregistered);
    `accuracy` is the delay histograms' (readers must use the same: a change needs a
    `--rebuild`)."""

    def __init__(self, raw: Reader, out: Store, rollups: Reader,
                 timezone: Callable[[str], ZoneInfo], accuracy: float = ACCURACY) -> None:
        self.raw, self.out, self.rollups, self.timezone = raw, out, rollups, timezone
        self.accuracy = accuracy
        self.done: dict[tuple[str, int], int] = {}  # (pilot, hour) -> when recomputed
        self.last: Pass | None = None  # the newest finished pass
        self.warned = False  # about rollups of an older layout

    async def recompute(self, pilot: str, hours: list[int],
                        progress: Callable[[int], None] | None = None) -> tuple[int, int]:
        """Rewrite the rollups of `pilot` for the given hour starts and their local days."""
        fields = await self.raw.fields()
        delayed = sorted(m for m, names in fields.items() if DELAY_FIELD in names)
        hours = sorted(set(hours))
        for i in range(0, len(hours), BATCH_HOURS):
            windows = [(h, h + HOUR_NS) for h in hours[i:i + BATCH_HOURS]]
            await self._write(await hour_points(self.raw, pilot, fields, windows))
            await self._write(await delay_points(self.raw, pilot, delayed, windows,
                                                 self.accuracy))
            if progress is not None:
                progress(len(windows))
        days = local_days(hours, self.timezone(pilot))
        for i in range(0, len(days), 31):
            await self._write(await user_points(self.raw, pilot, days[i:i + 31]))
            whole = [d for d in days[i:i + 31] if not (d[0] % HOUR_NS or d[1] % HOUR_NS)]
            await self._write(await day_points(self.rollups, pilot, fields, whole,
                                                  self.timezone(pilot)))
            await self._write(await day_delay_points(self.rollups, pilot, delayed, whole))
        if hours:  # after the rollups: what answers cached by readers it makes stale
            await self._write([change_point(pilot, hours, time.time_ns())])
        return len(hours), len(days)

    async def _write(self, points: list[Point]) -> None:
        if points:
            refused = await self.out.write(points)
            if refused:
                raise RuntimeError(f"the rollup store refused {len(refused)} points, e.g. "
                                   f"{refused[0].detail}")

    async def run_once(self, now_ns: int | None = None) -> Pass:
        """One pass: every ended slot marked since the last pass that this worker has not
        recomputed late enough after its newest mark."""
        now = time.time_ns() if now_ns is None else now_ns
        state = await read_state(self.rollups)
        if state is not None and state.layout < LAYOUT and not self.warned:
            log.warning("rollups predate layout %d (day sums that Lden and availability "
                        "read): run `citypilot rollup --rebuild` once; until then those KPIs "
                        "read hour rollups", LAYOUT)
            self.warned = True
        marks = await self.raw.dirty(state.watermark - IN_FLIGHT_NS if state else None)
        ended = now // HOUR_NS * HOUR_NS  # the hours before this one have ended
        todo: dict[str, list[int]] = defaultdict(list)
        watermark = now
        for mark in marks:
            if mark.hour + HOUR_NS > ended:
                # In progress (read raw): its marks must be seen again once it has ended.
                watermark = min(watermark, mark.marked_at)
            elif self.done.get((mark.pilot, mark.hour), -1) < mark.marked_at + IN_FLIGHT_NS:
                todo[mark.pilot].append(mark.hour)
        slots = days = 0
        for pilot, hours in sorted(todo.items()):
            got = await self.recompute(pilot, hours)
            slots, days = slots + got[0], days + got[1]
            self.done.update({(pilot, h): now for h in hours})
        forget = watermark - 2 * IN_FLIGHT_NS
        self.done = {k: v for k, v in self.done.items() if v >= forget}
        new = State(watermark, ended, now, state.layout if state else LAYOUT)
        await self._write([new.point()])
        log.info("rollup pass slots=%d days=%d complete_until=%d", slots, days, ended)
        self.last = Pass(slots, days, new)
        return self.last

    async def _measurements(self) -> tuple[str, ...]:
        return tuple(m for m in await self.raw.measurements()
                     if m not in (DEAD_LETTER_MEASUREMENT, STATUS_MEASUREMENT))

    async def first_hour(self, pilot: str, since_ns: int | None) -> int | None:
        """The start of the first hour at or after `since_ns` that holds data of `pilot`."""
        measurements = await self._measurements()
        if not measurements:
            return None
        seen = await self.raw.first_seen(measurements, DELAY_FIELD, start=since_ns,
                                         where=(("pilot", (pilot,)),))
        return min(s.ts for s in seen) // HOUR_NS * HOUR_NS if seen else None

    async def hours_with_data(self, pilot: str, since_ns: int | None, until_ns: int
                              ) -> list[int]:
        """The hour starts in [since, until) that hold readings or events of `pilot`."""
        measurements = await self._measurements()
        lo = ALL_TIME[0] if since_ns is None else since_ns // HOUR_NS * HOUR_NS
        if not measurements or lo >= until_ns:
            return []
        rows = await self.raw.aggregate(Aggregate(
            measurements, DELAY_FIELD, Stat.COUNT, ((lo, until_ns),),
            where=(("pilot", (pilot,)),), every_s=HOUR_NS / 1e9))
        return sorted({r.start for r in rows})

    async def pilots(self) -> list[str]:
        seen = await self.raw.last_seen(await self._measurements(), DELAY_FIELD)
        return sorted({s.pilot for s in seen if s.pilot})

    async def rebuild(self, pilots: list[str] | None, since_ns: int | None,
                      progress: Callable[[str, int, int], None] | None = None,
                      now_ns: int | None = None) -> Pass:
        """Recompute every ended hour with data since `since_ns` (all history: None) for
        `pilots` (all: None) from raw points, then let passes go on from here."""
        now = time.time_ns() if now_ns is None else now_ns
        ended = now // HOUR_NS * HOUR_NS
        slots = days = 0
        for pilot in pilots if pilots is not None else await self.pilots():
            first = await self.first_hour(pilot, since_ns)
            if first is None:
                continue
            # A slice at a time, so that no query scans the whole history at once (a year of
            # a large pilot would outlast any request timeout) and progress shows as it goes;
            # a slice the store cannot answer in time is read again in smaller ones.
            total = max(0, (ended - first) // HOUR_NS)
            lo, step = first, REBUILD_SLICE_NS
            while lo < ended:
                hi = min(lo + step, ended)
                try:
                    got = await self.recompute(pilot, await self.hours_with_data(pilot, lo, hi))
                except StoreUnavailable as exc:
                    if step <= HOUR_NS:
                        raise
                    step = max(HOUR_NS, step // 7 // HOUR_NS * HOUR_NS)
                    log.warning("rollup rebuild pilot=%s: %s; reading %d hours at a time",
                                pilot, exc, step // HOUR_NS)
                    continue
                slots, days = slots + got[0], days + got[1]
                lo = hi
                if progress is not None:
                    progress(pilot, (hi - first) // HOUR_NS, total)
        state = await read_state(self.rollups)
        everything = pilots is None and since_ns is None
        new = State(min(now, state.watermark) if state else now, ended, now,
                    LAYOUT if everything or state is None else state.layout)
        await self._write([new.point()])
        return Pass(slots, days, new)

    async def run_forever(self, interval_s: float, on_pass: Callable[[Pass], None]) -> None:
        while True:
            began = time.monotonic()
            try:
                on_pass(await self.run_once())
            except Exception:  # a bad pass is retried at the next interval, never fatal
                log.exception("rollup pass failed; retrying in %.0f s", interval_s)
            await asyncio.sleep(max(0.0, interval_s - (time.monotonic() - began)))
