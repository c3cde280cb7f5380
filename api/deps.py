"""Shared route dependencies: the parts opened by the lifespan, and checked parameters.

Every parameter that reaches a store query is validated here or by its declared pattern:
pilot, gateway and device ids follow the topic grammar, kinds and metrics the metric-name
grammar, times must carry an offset and lie in the years the stores can hold.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query, Request

from api.auth import check_pilot
from api.catalog import ApiKey, Catalog, Pilot
from api.fleet import Fleet
from api.kpis.periods import to_ns
from api.problems import Problem, invalid
from ingest.model import IDENT_PATTERN, MIN_TS_NS
from ingest.stores.base import Reader

MAX_TS_NS = 7_258_118_400 * 10**9  # 2200-01-01: InfluxDB's time ends in 2262


def _store(request: Request) -> Reader:
    store: Reader = request.app.state.store
    return store


def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


def _fleet(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


StoreDep = Annotated[Reader, Depends(_store)]
CatalogDep = Annotated[Catalog, Depends(_catalog)]
FleetDep = Annotated[Fleet, Depends(_fleet)]
PilotQuery = Annotated[str, Query(pattern=IDENT_PATTERN, description="a pilot id")]
Start = Annotated[datetime, Query(description="RFC 3339 with an offset; inclusive",
                                  examples=["2024-01-15T00:00:00+01:00"])]
End = Annotated[datetime, Query(description="RFC 3339 with an offset; exclusive",
                                examples=["2024-01-22T00:00:00+01:00"])]


def instant(value: datetime, name: str) -> int:
    """A query time as ns; 422 naming `query.<name>` without an offset or out of range."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise invalid(f"`{name}` needs a UTC offset (e.g. 2024-01-15T00:00:00+01:00 or ...Z)",
                      f"query.{name}")
    try:
        ns = to_ns(value)
    except OverflowError:
        ns = -1
    if not MIN_TS_NS <= ns < MAX_TS_NS:
        raise invalid(f"`{name}` must lie between 2000 and 2200", f"query.{name}")
    return ns


def period(start: datetime, end: datetime) -> tuple[int, int]:
    """[start, end) as ns; `end` <= `start` is a 422 naming both."""
    lo, hi = instant(start, "start"), instant(end, "end")
    if hi <= lo:
        raise invalid("`end` must be after `start` (start is inclusive, end exclusive)",
                      "query.start", "query.end")
    return lo, hi


async def readable_pilot(key: ApiKey, fleet: Fleet, pilot_id: str) -> Pilot:
    """The pilot (registered, or seen in data) if the key may read it: else 403 or 404."""
    check_pilot(key, pilot_id)
    pilot = await fleet.pilot(pilot_id)
    if pilot is None:
        raise Problem(404, f"no pilot {pilot_id!r} is registered or has sent data; "
                      "GET /api/v1/pilots lists them")
    return pilot


def ident(value: str, field: str) -> str:
    if not re.fullmatch(IDENT_PATTERN[1:-1], value):
        raise invalid(f"{field.split('.')[-1]} {value[:70]!r} is not a valid id "
                      "([A-Za-z0-9_-]{1,64})", field)
    return value
