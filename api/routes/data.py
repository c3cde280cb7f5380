"""Pilots (any role), and for operators: devices, readings and dead letters.

A pilot-limited key sees only its pilots in listings and gets 403 for another pilot's data.
Readings are bounded: at most `max_points` points per answer; without `every`, the bucket
width is chosen to fit (downsampling), and an explicit `every` that would exceed the limit is
a 422 naming the smallest one that fits.
"""

from __future__ import annotations

import math
import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import WithJsonSchema

from api.auth import Operator, Viewer, check_pilot, visible
from api.deps import (
    End,
    FleetDep,
    PilotQuery,
    Start,
    StoreDep,
    ident,
    instant,
    period,
    readable_pilot,
)
from api.fleet import DeviceView
from api.kpis.periods import from_ns
from api.problems import errors, invalid
from api.schemas import (
    DeadLetterOut,
    DeviceOut,
    GatewayOut,
    PilotOut,
    ReadingPoint,
    Readings,
    ReadingSeries,
)
from ingest.model import BASE64, EVENT_MEASUREMENT, IDENT_PATTERN, NAME_PATTERN, Reason
from ingest.stores.base import Aggregate, Stat, TagFilter

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 422, 503))
_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
            43200, 86400)
MAX_DEVICES = 20


class Agg(StrEnum):
    """The statistics a readings request may ask for (a subset of the store's `Stat`)."""

    MEAN = "mean"
    MIN = "min"
    MAX = "max"
    SUM = "sum"
    COUNT = "count"


@router.get("/pilots", response_model=list[PilotOut], tags=["pilots"])
async def pilots(key: Viewer, fleet: FleetDep) -> list[PilotOut]:
    """Registered pilots and pilots seen only in data, as far as the key may read them."""
    everything = await fleet.pilots()
    allowed = visible(key, [p.id for p, _ in everything])
    devices = await fleet.devices(allowed)
    out: list[PilotOut] = []
    for pilot, registered in everything:
        if pilot.id not in allowed:
            continue
        mine = [d for d in devices if d.pilot == pilot.id]
        gateways = {g.id: True for g in pilot.with_gateways().gateways}
        for d in mine:
            gateways.setdefault(d.gateway, False)
        out.append(PilotOut(id=pilot.id, name=pilot.name, population=pilot.population,
                            timezone=pilot.timezone, registered=registered,
                            gateways=[GatewayOut(id=g, registered=r)
                                      for g, r in sorted(gateways.items())],
                            devices=len(mine)))
    return out


def _device(d: DeviceView, now_ns: int) -> DeviceOut:
    e = d.entry
    return DeviceOut(
        pilot=d.pilot, gateway=d.gateway, id=d.id, registered=e is not None,
        kind=e.kind if e and e.kind else next(
            (k for k in d.kinds if k != EVENT_MEASUREMENT), None),
        kinds_seen=list(d.kinds),
        service=e.service if e and e.service else (d.services[0] if d.services else None),
        location=e.location if e else None, lat=e.lat if e else None,
        lon=e.lon if e else None, interval_s=d.interval_s, capacity=e.capacity if e else None,
        last_seen=from_ns(d.last_seen_ns) if d.last_seen_ns is not None else None,
        online=d.online(now_ns), state=d.state, battery=d.battery)


@router.get("/devices", response_model=list[DeviceOut], tags=["devices"])
async def devices(
    key: Operator, fleet: FleetDep,
    pilot: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    gateway: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    kind: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
    online: bool | None = None,
) -> list[DeviceOut]:
    """Registered and reporting devices with their status and when they were last seen."""
    if pilot is not None:
        check_pilot(key, pilot)
    pilots = [pilot] if pilot is not None else (sorted(key.pilots) if key.pilots else None)
    now = time.time_ns()
    out = [_device(d, now) for d in await fleet.devices(pilots)]
    return [d for d in out if (gateway is None or d.gateway == gateway)
            and (kind is None or d.kind == kind or kind in d.kinds_seen)
            and (online is None or d.online == online)]


def _every(span_s: float, series: int, every: float | None, max_points: int
           ) -> tuple[float, bool]:
    """The bucket width and whether it was chosen here (downsampled)."""
    smallest = span_s * series / max_points
    if every is not None:
        if math.ceil(span_s / every) * series > max_points:
            fit = next((s for s in _STEPS_S if s >= smallest), math.ceil(smallest / 86400) * 86400)
            raise invalid(f"{math.ceil(span_s / every) * series} points is more than the "
                          f"limit of {max_points}: use every >= {fit} s or a shorter period",
                          "query.every")
        return every, False
    chosen = next((s for s in _STEPS_S if s >= smallest), None)
    return float(chosen or math.ceil(smallest / 86400) * 86400), True


@router.get("/readings", response_model=Readings, tags=["readings"], responses=errors(404))
async def readings(
    request: Request, key: Operator, fleet: FleetDep, store: StoreDep, pilot: PilotQuery,
    kind: Annotated[str, Query(pattern=NAME_PATTERN, description="telemetry kind")],
    metric: Annotated[str, Query(pattern=NAME_PATTERN, description="field, e.g. pm25")],
    start: Start, end: End,
    device: Annotated[list[Annotated[str, WithJsonSchema({
        "type": "string", "pattern": IDENT_PATTERN})]] | None, Query(
            description=f"up to {MAX_DEVICES}; none: the pilot's devices together")] = None,
    gateway: Annotated[str | None, Query(pattern=IDENT_PATTERN)] = None,
    every: Annotated[float | None, Query(ge=0.001, le=366 * 86400, description="bucket "
                                         "width in seconds (1 ms or more); chosen to fit "
                                         "when absent")] = None,
    agg: Agg = Agg.MEAN,
) -> Readings:
    """A metric's series per device, aggregated into epoch-aligned buckets of `every` s."""
    lo, hi = period(start, end)
    devices = [ident(d, "query.device") for d in device or []]
    if len(devices) > MAX_DEVICES:
        raise invalid(f"at most {MAX_DEVICES} devices per request", "query.device")
    await readable_pilot(key, fleet, pilot)
    width, chosen = _every((hi - lo) / 1e9, max(1, len(devices)), every,
                           request.app.state.options.max_points)
    series: list[ReadingSeries] = []
    targets: list[str | None] = list(devices) or [None]
    for d in targets:
        tags = (("pilot", pilot), ("gateway", gateway), ("device", d))
        where: TagFilter = tuple((k, (v,)) for k, v in tags if v is not None)
        rows = await store.aggregate(Aggregate((kind,), metric, Stat(agg.value), ((lo, hi),),
                                               where=where, every_s=width))
        series.append(ReadingSeries(gateway=gateway, device=d, points=[
            ReadingPoint(time=from_ns(r.start), value=r.value) for r in rows]))
    return Readings(pilot=pilot, kind=kind, metric=metric, agg=agg.value, every_s=width,
                    downsampled=chosen, start=from_ns(lo), end=from_ns(hi), series=series)


@router.get("/deadletters", response_model=list[DeadLetterOut], tags=["dead letters"])
async def deadletters(
    key: Operator, store: StoreDep, reason: Reason | None = None,
    since: Annotated[datetime | None, Query(description="RFC 3339 with an offset")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[DeadLetterOut]:
    """Rejected messages, newest first, with the reason and the raw payload (size-capped).

    A pilot-limited key sees the dead letters of its pilots' native topics only (other
    formats' topics name no pilot), among the newest 20 x `limit`."""
    since_ns = instant(since, "since") if since is not None else None
    if key.pilots is None:
        rows = await store.dead_letters(reason=reason, since=since_ns, limit=limit)
    else:
        prefixes = tuple(f"citypilot/v1/{p}/" for p in key.pilots)
        rows = [r for r in await store.dead_letters(reason=reason, since=since_ns,
                                                    limit=min(20_000, 20 * limit))
                if r.topic.startswith(prefixes)][:limit]
    return [DeadLetterOut(time=from_ns(r.ts), reason=r.reason, topic=r.topic,
                          payload=r.payload, detail=r.detail,
                          payload_encoding="base64" if r.payload_encoding == BASE64
                          else "utf-8")
            for r in rows]
