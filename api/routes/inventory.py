"""The tender annex over HTTP: `GET /api/v1/exports/inventory` (viewer key) as CSV, XLSX or
GeoJSON, and its Table Schema at `/api/v1/exports/inventory.schema.json` (`api/open/annex.py`).
"""

from __future__ import annotations

import json
import time
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from api.auth import Viewer
from api.deps import FleetDep, PilotQuery, readable_pilot
from api.exports import XLSX_MEDIA_TYPE
from api.open import annex
from api.open.ogc import GEOJSON
from api.problems import errors

router = APIRouter(prefix="/api/v1", responses=errors(401, 403, 404, 422, 503),
                   tags=["exports"])


_CONTENT = {"text/csv": {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            GEOJSON: {"schema": {"type": "object"}}}


@router.get("/exports/inventory", response_class=Response, responses={
    200: {"content": _CONTENT, "description": "one row per device (inventory.schema.json "
          "describes the columns); XLSX and GeoJSON add a per-kind summary and the open "
          "interfaces' URLs"}})
async def export_inventory(
    request: Request, key: Viewer, fleet: FleetDep, pilot: PilotQuery,
    format: Annotated[annex.InventoryFormat, Query(description="csv, xlsx or geojson")
                      ] = annex.InventoryFormat.CSV,
) -> Response:
    """The pilot's devices with what is known of them: the annex of a tender."""
    entry = await readable_pilot(key, fleet, pilot)
    began = time.perf_counter()
    public_url: str = request.app.state.options.public_url
    data, media_type = await annex.export(fleet, request.app.state.uptime, entry, format,
                                          public_url)
    name = f"citypilot-inventory-{pilot}.{format.value}"
    return Response(data, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"',
        "Server-Timing": f"inventory;dur={1000 * (time.perf_counter() - began):.0f}"})


@router.get("/exports/inventory.schema.json", response_class=Response, responses={
    200: {"content": {"application/json": {"schema": {"type": "object"}}},
          "description": "a Frictionless Table Schema"}})
async def inventory_schema(key: Viewer) -> Response:
    """The Table Schema of the inventory export: every column, its type and unit."""
    return Response(json.dumps(annex.table_schema(), ensure_ascii=False, indent=2),
                    media_type="application/json")
