"""The pilot evaluation report over HTTP (any role; a pilot-limited key for its pilots only).

The same report as `citypilot report evaluation`: HTML, PDF/A-3b or XLSX for a pilot, a
period and optionally a baseline period (both ends or neither), in the language asked for,
else the pilot's registered one, else English. A bad request is a 422 naming its parameters.
"""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.auth import Viewer
from api.deps import End, FleetDep, PilotQuery, Start, StoreDep, instant, period, readable_pilot
from api.exports import XLSX_MEDIA_TYPE
from api.kpis.service import KpiRequestError
from api.problems import errors, invalid
from api.reports import render
from api.reports.evaluation import Evaluation, build

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 404, 422, 503),
                   tags=["reports"])


class ReportFormat(StrEnum):
    HTML = "html"
    PDF = "pdf"
    XLSX = "xlsx"


MEDIA_TYPES = {ReportFormat.HTML: "text/html; charset=utf-8",
               ReportFormat.PDF: "application/pdf", ReportFormat.XLSX: XLSX_MEDIA_TYPE}
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


@router.get("/reports/evaluation", response_class=Response, responses={200: {
    "description": "the evaluation report", "content": {
        "text/html": {"schema": {"type": "string"}},
        "application/pdf": {"schema": {"type": "string", "format": "binary"}},
        XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}})
async def evaluation_report(
    request: Request, key: Viewer, fleet: FleetDep, store: StoreDep, pilot: PilotQuery,
    start: Start, end: End, baseline_start: BaselineTime = None,
    baseline_end: BaselineTime = None,
    lang: Annotated[str | None, Query(pattern=r"^[a-z]{2}$", description="en, it, es, fr, "
                                      "el, pt, hr or sl; default: the pilot's")] = None,
    format: Annotated[ReportFormat, Query(description="html, pdf (PDF/A-3b with the XLSX "
                                          "attached) or xlsx")] = ReportFormat.HTML,
) -> Response:
    """The pilot evaluation report: summary, with and without the pilot, use against
    availability, outcomes against the law, deployment, uptake and activities, method."""
    lo, hi = period(start, end)
    base = baseline_period(baseline_start, baseline_end)
    entry = await readable_pilot(key, fleet, pilot)
    try:
        language = render.language(lang, entry.language)
    except render.ReportError as exc:
        raise invalid(str(exc), "query.lang") from None
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
    body = await run_in_threadpool(writer)  # a PDF takes seconds of CPU
    headers = {"Content-Disposition": f'attachment; filename="'
               f'{render.filename(ev, format.value)}"', "Content-Language": language,
               "Server-Timing": f"report;dur={1000 * (time.perf_counter() - began):.0f}"}
    return Response(body, media_type=MEDIA_TYPES[format], headers=headers)
