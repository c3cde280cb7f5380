"""KPI definitions, KPI values per pilot and period, and exports of all of them (any role).

Periods are buckets of the pilot's local days, ISO weeks or months (UTC for a pilot seen only
in data); a bad period is a 422 naming `start` and `end`, an unknown KPI or pilot a 404.
"""

from __future__ import annotations

import json
import time
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import WithJsonSchema

from api.auth import Viewer
from api.catalog import ApiKey
from api.deps import End, FleetDep, PilotQuery, Start, StoreDep, period, readable_pilot
from api.exports import XLSX_MEDIA_TYPE, to_csv, to_schema, to_xlsx
from api.kpis.definitions import BY_ID, KPIS
from api.kpis.periods import Grain, rfc3339
from api.kpis.service import KpiRequestError, KpiResult, compute_many, timezone_of
from api.problems import Problem, errors, invalid
from api.schemas import KpiDefinition, KpiLimit, KpiValues
from ingest.model import NAME_PATTERN

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 422, 503), tags=["kpis"])
GrainQuery = Annotated[Grain, Query(description="day, week (from Monday) or month, "
                                    "in the pilot's timezone; period: the whole period")]


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    JSON = "json"


@router.get("/kpis", response_model=list[KpiDefinition])
async def definitions(key: Viewer) -> list[KpiDefinition]:
    """Every KPI: id, title, family, unit, formula, natural grain, reference, limit values."""
    return [KpiDefinition(id=k.id, title=k.title, family=k.family.value, unit=k.unit,
                          formula=k.formula, grain=k.grain, reference=k.reference,
                          dimensions=list(k.dimensions),
                          limits=[KpiLimit(regime=lim.regime.value, value=lim.value,
                                           unit=lim.unit, averaging=lim.averaging,
                                           allowed=lim.allowed) for lim in k.limits])
            for k in KPIS]


async def _compute(request: Request, key: ApiKey, fleet: FleetDep, store: StoreDep,
                   pilot_id: str, start: Start, end: End, grain: Grain,
                   ids: list[str]) -> list[KpiResult]:
    lo, hi = period(start, end)
    pilot = await readable_pilot(key, fleet, pilot_id)
    try:
        return await compute_many(store, pilot, ids, lo, hi, grain,
                                  options=request.app.state.options.kpi)
    except KpiRequestError as exc:
        raise invalid(str(exc), *(f"query.{f}" for f in exc.fields)) from None


@router.get("/kpis/{kpi_id}", response_model=KpiValues, responses=errors(404))
async def kpi_values(
    request: Request, key: Viewer, fleet: FleetDep, store: StoreDep,
    kpi_id: Annotated[str, Path(pattern=NAME_PATTERN, description="a KPI id")],
    pilot: PilotQuery, start: Start, end: End, grain: GrainQuery = Grain.DAY,
) -> KpiValues:
    """One KPI's values per period; a value whose inputs are missing is null with a reason."""
    if kpi_id not in BY_ID:
        raise Problem(404, f"no KPI {kpi_id!r}; GET /api/v1/kpis lists them")
    [result] = await _compute(request, key, fleet, store, pilot, start, end, grain, [kpi_id])
    return to_schema(result)


_EXPORT_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
    "application/json": {"schema": {"type": "object", "properties": {
        "pilot": {"type": "string"}, "timezone": {"type": "string"},
        "grain": {"type": "string"}, "start": {"type": "string"}, "end": {"type": "string"},
        "kpis": {"type": "array", "items": {"$ref": "#/components/schemas/KpiValues"}}}}},
}


@router.get("/exports/kpis", response_class=Response, responses={
    **errors(404), 200: {"content": _EXPORT_CONTENT, "description": "the KPIs, one row per "
                         "KPI, period and dimension, with units"}})
async def export_kpis(
    request: Request, key: Viewer, fleet: FleetDep, store: StoreDep, pilot: PilotQuery,
    start: Start, end: End, grain: GrainQuery = Grain.DAY,
    format: Annotated[ExportFormat, Query(description="csv, xlsx (with a definitions "
                                          "sheet) or json")] = ExportFormat.CSV,
    kpi: Annotated[list[Annotated[str, WithJsonSchema({"type": "string", "enum": sorted(
        BY_ID)})]] | None, Query(description="only these KPIs (all by default)")] = None,
) -> Response:
    """Every KPI (or those named) for a pilot and period, as a file for a report."""
    ids = kpi or [k.id for k in KPIS]
    unknown = [k for k in ids if k not in BY_ID]
    if unknown:
        raise invalid(f"unknown KPI {unknown[0][:70]!r}; GET /api/v1/kpis lists them",
                      "query.kpi")
    began = time.perf_counter()
    results = await _compute(request, key, fleet, store, pilot, start, end, grain, ids)
    name = f"citypilot-kpis-{pilot}-{start:%Y%m%d}-{end:%Y%m%d}.{format.value}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"',
               "Server-Timing": f"kpis;dur={1000 * (time.perf_counter() - began):.0f}"}
    if format is ExportFormat.CSV:
        return Response(to_csv(results), media_type="text/csv; charset=utf-8",
                        headers=headers)
    if format is ExportFormat.XLSX:
        return Response(to_xlsx(results), media_type=XLSX_MEDIA_TYPE, headers=headers)
    tz = timezone_of(await readable_pilot(key, fleet, pilot))
    lo, hi = period(start, end)
    body = {"pilot": pilot, "timezone": tz.key, "grain": grain.value,
            "start": rfc3339(lo, tz), "end": rfc3339(hi, tz),
            "kpis": [to_schema(r).model_dump() for r in results]}
    return Response(json.dumps(body, ensure_ascii=False), media_type="application/json",
                    headers=headers)
