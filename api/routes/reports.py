"""The reports over HTTP (any role; a pilot-limited key for its pilots only).

The same reports as `citypilot report evaluation` and `citypilot report cluster`: HTML,
PDF/A-3b or XLSX. The evaluation is of a pilot, a period and optionally a baseline period
(both ends or neither), in the language asked for, else the pilot's registered one, else
English; the cluster compares up to `MAX_PILOTS` pilots over one period, in the language
asked for, else the first pilot's, else English. A bad request is a 422 naming its
parameters.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer
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
from api.exports import XLSX_MEDIA_TYPE
from api.kpis.service import KpiRequestError
from api.problems import errors, invalid
from api.reports import cluster, render
from api.reports.evaluation import Evaluation, build

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 404, 422, 503),
                   tags=["reports"])


class ReportFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"
    XLSX = "xlsx"


MEDIA_TYPES = {ReportFormat.HTML: "text/html; charset=utf-8",
               ReportFormat.PDF: "application/pdf", ReportFormat.XLSX: XLSX_MEDIA_TYPE}
MAX_PILOTS = 20
REPORT_BODY: dict[int | str, dict[str, Any]] = {200: {"description": "the report", "content": {
    "text/html": {"schema": {"type": "string"}},
    "application/pdf": {"schema": {"type": "string", "format": "binary"}},
    XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}}
Lang = Annotated[str | None, Query(pattern=r"^[a-z]{2}$", description="en, it, es, fr, el, "
                                   "pt, hr or sl; default: the (first) pilot's")]
Format = Annotated[ReportFormat, Query(description="html, pdf (PDF/A-3b with the XLSX "
                                       "attached) or xlsx")]
BaselineTime = Annotated[datetime | None, Query(description="RFC 3339 with an offset; the "
                                                "baseline period (give both ends or neither)")]


def baseline_period(start: datetime | None, end: datetime | None) -> tuple[int, int] | None:
    if start is None and end is None:
        return None
    if start is None or end is None:
        raise invalid("give both `baseline_start` and `baseline_end`, or neither",
                      "query.baseline_start", "query.baseline_end")
    lo, hi = instant(start, "baseline_start"), instant(end, "baseline_end")
    if hi <= lo:
        raise invalid("`baseline_end` must be after `baseline_start`",
                      "query.baseline_start", "query.baseline_end")
    return lo, hi


def _language(lang: str | None, registered: str | None) -> str:
    try:
        return render.language(lang, registered)
    except render.ReportError as exc:
        raise invalid(str(exc), "query.lang") from None


async def _answer(writer: Callable[[], bytes], format: ReportFormat, name: str, language: str,
                  began: float) -> Response:
    body = await run_in_threadpool(writer)  # a PDF takes seconds of CPU
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "Content-Language": language,
               "Server-Timing": f"report;dur={1000 * (time.perf_counter() - began):.0f}"}
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)


@router.get("/reports/evaluation", response_class=Response, responses=REPORT_BODY)
async def evaluation_report(
    request: Request, key: Viewer, fleet: FleetDep, store: StoreDep, pilot: PilotQuery,
    start: Start, end: End, baseline_start: BaselineTime = None,
    baseline_end: BaselineTime = None, lang: Lang = None, format: Format = ReportFormat.HTML,
) -> Response:
    """The pilot evaluation report: summary, with and without the pilot, use against
    availability, outcomes against the law, deployment, uptake and activities, method."""
    lo, hi = period(start, end)
    base = baseline_period(baseline_start, baseline_end)
    entry = await readable_pilot(key, fleet, pilot)
    language = _language(lang, entry.language)
    began = time.perf_counter()
    try:
        ev: Evaluation = await build(store, fleet, entry, lo, hi, base,
                                     options=request.app.state.options.kpi,
                                     now_ns=time.time_ns())
    except KpiRequestError as exc:
        raise invalid(str(exc), *(f"query.{f}" for f in exc.fields)) from None
    writer = {ReportFormat.HTML: lambda: render.to_html(ev, language).encode(),
              ReportFormat.PDF: lambda: render.to_pdf(ev, language),
              ReportFormat.XLSX: lambda: render.to_xlsx(ev)}[format]
    return await _answer(writer, format, render.filename(ev, format.value), language, began)


@router.get("/reports/cluster", response_class=Response, responses=REPORT_BODY)
async def cluster_report(
    request: Request, key: Viewer, fleet: FleetDep, store: StoreDep,
    pilots: Annotated[str, Query(max_length=64 * MAX_PILOTS + MAX_PILOTS, description=(
        f"the pilots' ids, comma-separated (at most {MAX_PILOTS})"))],
    start: Start, end: End, lang: Lang = None, format: Format = ReportFormat.HTML,
) -> Response:
    """Pilots of this installation compared on the same KPIs over one period, per device and
    per 100,000 inhabitants (the registry's population)."""
    lo, hi = period(start, end)
    ids = [ident(p.strip(), "query.pilots") for p in pilots.split(",")]
    if len(ids) > MAX_PILOTS:
        raise invalid(f"at most {MAX_PILOTS} pilots in a cluster report", "query.pilots")
    if len(set(ids)) != len(ids):
        raise invalid("a pilot is named twice in `pilots`", "query.pilots")
    entries = [await readable_pilot(key, fleet, p) for p in ids]
    language = _language(lang, entries[0].language)
    began = time.perf_counter()
    try:
        cl = await cluster.build(
            store, [(e, fleet.catalog.pilot(e.id) is not None) for e in entries], lo, hi,
            options=request.app.state.options.kpi, now_ns=time.time_ns())
    except KpiRequestError as exc:
        raise invalid(str(exc), *(f"query.{f}" for f in exc.fields)) from None
    writer = {ReportFormat.HTML: lambda: render.cluster_html(cl, language).encode(),
              ReportFormat.PDF: lambda: render.cluster_pdf(cl, language),
              ReportFormat.XLSX: lambda: render.cluster_xlsx(cl)}[format]
    return await _answer(writer, format, render.cluster_filename(cl, format.value), language,
                         began)
