"""The answers of finished periods, kept until a rollup pass recomputes one of their hours.

A KPI answered wholly from rollups for a period that ended before the rollups' horizon
depends only on rollup points, and those change only when the worker recomputes a slot. So
such answers are kept (at most `size` of them, the least recently used dropped first) and
dropped when the worker reports that it recomputed an hour inside their period.

The worker reports each pilot's recomputed hours as a `CHANGES_MEASUREMENT` point written
after their rollup points, stamped with the time of writing (`change_point`). The cache looks
at those points whenever the worker's state shows a new pass (read through the readers'
`Horizon`, so at most every few seconds): the ones stamped since the pass it last saw, less
`MARGIN_NS` for clocks of several workers that disagree. A change written after that look
is stamped later than the pass it saw, so the next look finds it. An answer whose computation
overlapped a look at a new pass is not kept (it may have read rollups half rewritten).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Any

from api.kpis.rollups.plan import HOUR_NS
from ingest.model import Point
from ingest.stores.base import ALL_TIME, Distinct, Reader, Window

CHANGES_MEASUREMENT = "rollup_changes"
CHANGES_FIELD = "hours"
MARGIN_NS = 120 * 10**9
MAX_RANGES = 500  # ranges a change point lists; beyond, one range covers them all


def change_point(pilot: str, hours: Iterable[int], now_ns: int) -> Point:
    """`pilot;lo-hi,lo-hi`: the recomputed hours of `pilot` as ranges of ns."""
    ranges: list[list[int]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1][1] = hour + HOUR_NS
        else:
            ranges.append([hour, hour + HOUR_NS])
    if len(ranges) > MAX_RANGES:
        ranges = [[ranges[0][0], ranges[-1][1]]]
    text = ",".join(f"{lo}-{hi}" for lo, hi in ranges)
    return Point(CHANGES_MEASUREMENT, (("pilot", pilot),), {CHANGES_FIELD: f"{pilot};{text}"},
                 now_ns)


def parse_changes(text: str) -> tuple[str, list[Window]]:
    pilot, _, ranges = text.partition(";")
    out: list[Window] = []
    for entry in ranges.split(","):
        if entry:
            lo, _, hi = entry.partition("-")
            out.append((int(lo), int(hi)))
    return pilot, out


@dataclass(frozen=True, slots=True)
class _Entry:
    pilot: str
    window: Window
    answer: Any


class ResultCache:
    """`get` and `put` answers by key; `refresh` drops the ones a newer pass recomputed.
    `passed_at` is the worker's newest pass as the horizon shows it (None: no rollups)."""

    def __init__(self, rollups: Reader, size: int = 1024) -> None:
        if size < 1:
            raise ValueError("a result cache holds at least one answer")
        self.rollups, self.size = rollups, size
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._seen: int | None = None  # the newest pass looked at
        self.generation = 0  # how many new passes were looked at

    def __len__(self) -> int:
        return len(self._entries)

    async def refresh(self, passed_at: int | None) -> None:
        if passed_at is None or passed_at == self._seen:
            return
        if self._seen is not None and self._entries:
            since = min(self._seen, passed_at) - MARGIN_NS
            [texts] = await self.rollups.distinct(Distinct(
                CHANGES_MEASUREMENT, CHANGES_FIELD, ((since, ALL_TIME[1]),)))
            changed = [parse_changes(t) for t in texts]
            stale = [key for key, e in self._entries.items()
                     if any(pilot == e.pilot and lo < e.window[1] and e.window[0] < hi
                            for pilot, ranges in changed for lo, hi in ranges)]
            for key in stale:
                del self._entries[key]
        self._seen = passed_at
        self.generation += 1

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        self._entries.move_to_end(key)
        return entry.answer

    def put(self, key: Hashable, pilot: str, window: Window, answer: Any,
            generation: int) -> None:
        """Keep `answer` for `pilot`'s `window`, computed since look `generation`."""
        if generation != self.generation:
            return
        self._entries[key] = _Entry(pilot, window, answer)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
