"""The DCAT-AP 3.0 catalogue routes: `GET /catalog.ttl`, `/catalog.jsonld` and `/catalog`.

`/catalog` is where the catalogue's ids (`<public_url>/catalog#…`) resolve: Turtle, or
JSON-LD when the `Accept` header asks for it. The facts come from the caller's scope
(`access.py`): without a key only the open pilots and their open kinds, with a viewer key
every pilot the key may read. Coverage in time is when the shown kinds (and, for usage, the
events) were first and last seen; in space, the box of the shown devices' coordinates.
The graph itself is built in `dcat.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.catalog import Pilot
from api.fleet import Fleet
from api.kpis.periods import from_ns, midnight
from api.kpis.service import timezone_of
from api.open.access import OpenScope, Scope, limited
from api.open.dcat import PilotFacts, Span, catalogue, jsonld, turtle
from api.open.inventory import Item, items
from api.options import KpiOptions
from api.problems import errors
from ingest.model import DELAY_FIELD, EVENT_MEASUREMENT, RESERVED_KINDS
from ingest.stores.base import Seen

TURTLE = "text/turtle"
JSONLD = "application/ld+json"
router = APIRouter(tags=["open data: DCAT-AP catalogue"], dependencies=[Depends(limited)],
                   responses=errors(401, 429, 503))
_RDF = {TURTLE: {"schema": {"type": "string"}}, JSONLD: {"schema": {"type": "object"}}}


def _spans(rows: Sequence[Seen], scope: Scope, pilot: str
           ) -> tuple[Span | None, Span | None, set[str]]:
    """(observations, usage, kinds seen) of one pilot, from first- and last-seen rows."""
    obs: list[int] = []
    use: list[int] = []
    kinds: set[str] = set()
    for r in rows:
        if r.pilot != pilot:
            continue
        if r.measurement == EVENT_MEASUREMENT:
            use.append(r.ts)
        elif r.measurement not in RESERVED_KINDS and scope.shows(pilot, r.measurement):
            obs.append(r.ts)
            kinds.add(r.measurement)
    return (Span(min(obs), max(obs)) if obs else None,
            Span(min(use), max(use)) if use else None, kinds)


def usage_window(usage: Span | None, pilot: Pilot, options: KpiOptions, now_ns: int
                 ) -> tuple[int, int]:
    """The usage link's period: the local days covered (the last 30 without data), within
    what one usage request may ask for."""
    tz = timezone_of(pilot)
    last = from_ns(usage.end_ns if usage else now_ns, tz).date()
    first = from_ns(usage.start_ns, tz).date() if usage else last - timedelta(days=29)
    most = max(1, min(int(options.max_days) - 1, options.max_buckets))
    first = max(first, last - timedelta(days=most - 1))
    return midnight(first, tz), midnight(last + timedelta(days=1), tz)


def _bbox(found: Sequence[Item]) -> tuple[float, float, float, float] | None:
    points = [(i.lon, i.lat) for i in found if i.lon is not None and i.lat is not None]
    if not points:
        return None
    return (min(x for x, _ in points), min(y for _, y in points),
            max(x for x, _ in points), max(y for _, y in points))


def _inventory(found: Sequence[Item], pilot: Pilot, observations: Span | None
               ) -> Span | None:
    tz = timezone_of(pilot)
    starts = [midnight(i.installed, tz) for i in found if i.installed is not None]
    ends = [i.last_seen_ns for i in found if i.last_seen_ns is not None]
    if observations is not None:
        starts.append(observations.start_ns)
        ends.append(observations.end_ns)
    return Span(min(starts), max(starts + ends)) if starts and ends else None


async def facts(fleet: Fleet, scope: Scope, options: KpiOptions, now_ns: int
                ) -> list[PilotFacts]:
    """What the scope shows of each of its pilots."""
    pilots = scope.only(None)
    where = (("pilot", tuple(pilots)),)
    measurements = await fleet.data_measurements()
    rows = [*await fleet.store.first_seen(measurements, DELAY_FIELD, where=where),
            *await fleet.store.last_seen(measurements, DELAY_FIELD, where=where)]
    fields = await fleet.store.fields()
    found = await items(fleet, scope, pilots)
    out = []
    for pilot_id in pilots:
        pilot = scope.pilots[pilot_id]
        mine = [i for i in found if i.pilot == pilot_id]
        observations, usage, seen = _spans(rows, scope, pilot_id)
        registered = {d.kind for d in pilot.devices if d.kind is not None}
        allowed = scope.kinds[pilot_id]
        kinds = sorted(allowed if allowed is not None else seen | registered)
        metrics = sorted({m for k in kinds for m in fields.get(k, [])} - {DELAY_FIELD})
        open_ = pilot.published
        public = open_.open_data and set(kinds) | registered | seen <= set(open_.open_kinds)
        window = usage_window(usage, pilot, options, now_ns) \
            if usage is not None or pilot.services else None
        out.append(PilotFacts(
            pilot, tuple(kinds), tuple(metrics), _bbox(mine),
            _inventory(mine, pilot, observations), observations,
            # in local days, as the usage cells: no use's own time is published
            Span(*window) if window is not None and usage is not None else None, window,
            public or allowed is not None))
    return out


async def _graph_text(request: Request, scope: Scope, media_type: str) -> Response:
    options = request.app.state.options
    found = await facts(request.app.state.fleet, scope, options.kpi, time.time_ns())
    graph = catalogue(options.public_url, found, options.publisher)
    if media_type == JSONLD:
        return Response(jsonld(graph), media_type=JSONLD)
    return Response(turtle(graph), media_type=f"{TURTLE}; charset=utf-8")


@router.get("/catalog.ttl", summary="The DCAT-AP 3.0 catalogue, Turtle",
            response_class=Response,
            responses={200: {"content": {TURTLE: _RDF[TURTLE]},
                             "description": "the catalogue"}})
async def catalog_turtle(request: Request, scope: OpenScope) -> Response:
    """The datasets of the open interfaces (inventory, observations, usage aggregates per
    pilot), their distributions and the data services, as DCAT-AP 3.0."""
    return await _graph_text(request, scope, TURTLE)


@router.get("/catalog.jsonld", summary="The DCAT-AP 3.0 catalogue, JSON-LD",
            response_class=Response,
            responses={200: {"content": {JSONLD: _RDF[JSONLD]},
                             "description": "the catalogue"}})
async def catalog_jsonld(request: Request, scope: OpenScope) -> Response:
    """The same catalogue as JSON-LD (with a compacting context)."""
    return await _graph_text(request, scope, JSONLD)


@router.get("/catalog", summary="The DCAT-AP 3.0 catalogue (Turtle or JSON-LD by Accept)",
            response_class=Response,
            responses={200: {"content": _RDF, "description": "the catalogue"}})
async def catalog(request: Request, scope: OpenScope) -> Response:
    """Where the catalogue's ids resolve: JSON-LD when `Accept` names it (or JSON), else
    Turtle."""
    accept = request.headers.get("accept", "")
    wanted = JSONLD if JSONLD in accept or "application/json" in accept else TURTLE
    answer = await _graph_text(request, scope, wanted)
    answer.headers["Vary"] = "Accept"
    return answer
