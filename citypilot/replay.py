"""`citypilot deadletters replay`: decode kept dead letters again, after a mapping or a codec
was fixed, and store what now decodes. Writes are idempotent (same series and timestamp: one
point), so replaying twice stores nothing twice; the dead letters themselves are kept (the
store is append-only), and the report says what still fails and why."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

from citypilot.settings import Settings
from citypilot.wiring import collector_options, reader, store
from ingest import topics
from ingest.collector import Route, decode
from ingest.decode.native import NativeDecoder
from ingest.model import DEAD_LETTER_MEASUREMENT, Point
from ingest.mqtt import topic_matches

log = logging.getLogger(__name__)


@dataclass
class ReplayReport:
    examined: int = 0
    stored_points: int = 0
    recovered: int = 0
    still_failing: Counter[str] = field(default_factory=Counter)


def _routes(s: Settings, source: str | None) -> tuple[Route, ...]:
    options = collector_options(s)
    native = Route(topics.subscription(), NativeDecoder(options.limits))
    extra = list(options.routes) + [r for c in options.connections for r in c.routes]
    if source is not None:
        from ingest.decode.sources import load_sources

        wanted = {src.topic for src in load_sources(s.sources) if src.name == source}
        extra = [r for r in extra if r.filter in wanted]
    return (native, *extra)


async def replay(s: Settings, *, reason: str, source: str | None, since_ns: int | None,
                 limit: int) -> ReplayReport:
    routes = _routes(s, source)
    report = ReplayReport()
    async with reader(s) as kept:
        letters = await kept.dead_letters(reason=reason, since=since_ns, limit=limit)
    async with store(s) as st:
        points: list[Point] = []
        for letter in letters:
            if source is not None and len(routes) > 1 and not any(
                    topic_matches(r.filter, letter.topic) for r in routes[1:]):
                continue
            report.examined += 1
            out = decode(routes, letter.topic, letter.raw(), time.time_ns())
            fresh = [p for p in out.points if p.measurement != DEAD_LETTER_MEASUREMENT]
            if out.rejections:
                report.still_failing.update(r.reason.value for r in out.rejections)
            if fresh and not out.rejections:
                report.recovered += 1
            points.extend(fresh)
        if points:
            refused = await st.write(points)
            report.stored_points = len(points) - len(refused)
            report.still_failing.update("store_rejected" for _ in refused)
    return report
