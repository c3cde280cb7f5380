"""Service use as open data: `GET /open/v1/usage?pilot=&start=&end=[&format=csv]`.

Per service and local day, the uses (events of the types the KPIs count as uses:
`api.kpis.pull.USES`) and the distinct pseudonymous users, and per service the totals over
the period, suppressed by `suppression.py` with the pilot's `open_min_users` as k. No user
id leaves the store query: only counts are answered.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from api.deps import End, PilotQuery, Start, period
from api.kpis.periods import Grain, buckets, from_ns, rfc3339
from api.kpis.pull import USES
from api.kpis.service import KpiRequestError, check_period, timezone_of
from api.open.access import OpenScope, limited
from api.open.suppression import RULE, Count, Published, suppress
from api.problems import errors, invalid
from ingest.model import EVENT_MEASUREMENT
from ingest.stores.base import Aggregate, Distinct, Reader, Stat, TagFilter

router = APIRouter(prefix="/open/v1", tags=["open data: usage"],
                   dependencies=[Depends(limited)],
                   responses=errors(401, 404, 422, 429, 503))
_CONTENT = {"application/json": {"schema": {"type": "object"}},
            "text/csv": {"schema": {"type": "string"}}}


async def counts(store: Reader, pilot_id: str, days: list[tuple[str, int, int]],
                 lo: int, hi: int) -> tuple[dict[tuple[str, str], Count], dict[str, Count]]:
    """Uses and distinct users per (day, service), and per service over [lo, hi)."""
    where: TagFilter = (("pilot", (pilot_id,)), *USES)
    windows = tuple((a, b) for _, a, b in days)
    rows = await store.aggregate(Aggregate((EVENT_MEASUREMENT,), "value", Stat.COUNT,
                                           windows, by=("service",), where=where))
    uses: dict[tuple[str, str], int] = {}
    for r in rows:
        if r.value:
            uses[(days[r.window][0], r.tag("service"))] = int(r.value)
    cells: dict[tuple[str, str], Count] = {}
    totals: dict[str, Count] = {}
    for service in sorted({s for _, s in uses}):
        sets = await store.distinct(Distinct(
            EVENT_MEASUREMENT, "user", (*windows, (lo, hi)),
            where=(*where, ("service", (service,)))))
        total_uses = 0
        for i, (day, _, _) in enumerate(days):
            n = uses.get((day, service))
            if n:
                cells[(day, service)] = Count(n, len(sets[i]))
                total_uses += n
        totals[service] = Count(total_uses, len(sets[-1]))
    return cells, totals


@router.get("/usage", response_class=Response,
            responses={200: {"content": _CONTENT, "description": "suppressed usage cells"}})
async def usage(
    request: Request, scope: OpenScope, pilot: PilotQuery, start: Start, end: End,
    format: Annotated[str, Query(pattern="^(json|csv)$", description="json or csv")] = "json",
) -> Response:
    """Uses and distinct users per service and local day, cells under `min_users` users
    suppressed (`"c"`), with per-service totals suppressed by the same rule."""
    [pilot_id] = scope.only(pilot)
    entry = scope.pilots[pilot_id]
    lo, hi = period(start, end)
    tz = timezone_of(entry)
    try:
        check_period(lo, hi, Grain.DAY, tz, request.app.state.options.kpi)
    except KpiRequestError as exc:
        raise invalid(str(exc), *(f"query.{f}" for f in exc.fields)) from None
    days = [(from_ns(b.lo, tz).date().isoformat(), b.lo, b.hi)
            for b in buckets(lo, hi, Grain.DAY, tz)]
    k = entry.published.open_min_users
    cells, totals = await counts(request.app.state.store, pilot_id, days, lo, hi)
    shown, shown_totals = suppress(cells, totals, k)
    cell_rows = [_row({"day": day, "service": service}, shown[(day, service)])
                 for day, service in sorted(shown)]
    total_rows = [_row({"service": s}, shown_totals[s]) for s in sorted(shown_totals)]
    if format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["day", "service", "uses", "users"])
        for r in cell_rows:
            writer.writerow([r["day"], r["service"], r["uses"], r["users"]])
        for r in total_rows:
            writer.writerow(["total", r["service"], r["uses"], r["users"]])
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return JSONResponse({"pilot": pilot_id, "min_users": k, "timezone": tz.key,
                         "start": rfc3339(lo, tz), "end": rfc3339(hi, tz),
                         "rule": RULE.format(k=k), "cells": cell_rows,
                         "totals": total_rows})


def _row(head: dict[str, Any], published: Published) -> dict[str, Any]:
    return head | {"uses": published.uses, "users": published.users}
