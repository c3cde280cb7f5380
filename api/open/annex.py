"""The tender annex: the inventory as a table (CSV, XLSX, GeoJSON), its Frictionless Table
Schema, and a per-pilot summary a tender can cite as "existing infrastructure to be reused".

The columns are defined once (`COLUMNS`: name, type, unit, description); the rows, the XLSX
header and `inventory.schema.json` all come from them, so the schema describes every column
as it is written. XLSX cells are typed (numbers, dates; `last_seen` in UTC, Excel having no
time zones) and a second sheet holds the summary.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from api.catalog import Pilot
from api.exports import XLSX_MEDIA_TYPE, save, sheet, workbook
from api.fleet import Fleet
from api.kpis.periods import NS, from_ns
from api.open.inventory import UPTIME_DAYS, Item, Uptime, pilot_inventory
from api.open.ogc import GEOJSON, device_feature


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # Table Schema: string, number, boolean, date, datetime
    description: str
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None


COLUMNS = (
    Column("pilot", "string", "the pilot (city) id"),
    Column("gateway", "string", "the gateway the device reports through"),
    Column("device", "string", "the device id, unique within its gateway"),
    Column("uri", "string", "the device's persistent id (its OGC API feature)"),
    Column("registered", "boolean", "listed in the registry (false: seen only in data)"),
    Column("kind", "string", "the telemetry kind it reports (air_quality, noise, ...)"),
    Column("service", "string", "the citizen service whose uses it counts"),
    Column("metrics", "string", "what it measures, each with its unit: name [unit]; ..."),
    Column("lat", "number", "latitude, WGS 84", "degree", -90, 90),
    Column("lon", "number", "longitude, WGS 84", "degree", -180, 180),
    Column("location", "string", "where it is, in words"),
    Column("operator", "string", "who runs it"),
    Column("network", "string", "how it connects: LoRaWAN, NB-IoT, Wi-Fi, ..."),
    Column("manufacturer", "string", "its maker"),
    Column("model", "string", "its model"),
    Column("installed", "date", "the local day it was installed"),
    Column("interval_s", "number", "expected reporting interval", "s", 0),
    Column("last_seen", "datetime", "its newest reading or event (UTC)"),
    Column(f"availability_{UPTIME_DAYS}d", "number", "share of hourly slots with a reading "
           f"over the last {UPTIME_DAYS} days (the availability KPI for this device)", "%",
           0, 100),
    Column(f"completeness_{UPTIME_DAYS}d", "number", "readings received over readings "
           f"expected over the last {UPTIME_DAYS} days (the data completeness KPI)", "%",
           0, 100),
)
NAMES = tuple(c.name for c in COLUMNS)
SUMMARY_COLUMNS = ("pilot", "kind", "devices", "located", f"reporting_{UPTIME_DAYS}d",
                   f"mean_availability_{UPTIME_DAYS}d")


def table_schema() -> dict[str, Any]:
    """`inventory.schema.json`: a Frictionless Table Schema of the export's columns."""
    fields = []
    for c in COLUMNS:
        field: dict[str, Any] = {"name": c.name, "type": c.type,
                                 "description": c.description + (f" [{c.unit}]" if c.unit
                                                                 else "")}
        if c.unit:
            field["unit"] = c.unit
        constraints = {k: v for k, v in (("minimum", c.minimum), ("maximum", c.maximum))
                       if v is not None}
        if c.name in ("pilot", "gateway", "device", "uri", "registered"):
            constraints["required"] = True
        if constraints:
            field["constraints"] = constraints
        fields.append(field)
    return {"$schema": "https://specs.frictionlessdata.io/schemas/table-schema.json",
            "fields": fields, "primaryKey": ["pilot", "gateway", "device"],
            "missingValues": [""]}


def row(item: Item, uri: str) -> dict[str, Any]:
    """One device as the columns hold it (Python values; None: unknown)."""
    return dict(zip(NAMES, (
        item.pilot, item.gateway, item.device, uri, item.registered, item.kind, item.service,
        "; ".join(f"{m.name} [{m.unit}]" if m.unit else m.name for m in item.metrics) or None,
        item.lat, item.lon, item.location, item.operator, item.network, item.manufacturer,
        item.model, item.installed, item.interval_s,
        from_ns(item.last_seen_ns) if item.last_seen_ns is not None else None,
        item.availability, item.completeness), strict=True))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(NAMES)
    for r in rows:
        writer.writerow([_text(r[n]) for n in NAMES])
    return out.getvalue()


def summary(pilot: Pilot, found: Sequence[Item], now_ns: int) -> list[dict[str, Any]]:
    """Per kind (or service): devices, with coordinates, reporting in the last 30 days, and
    their mean availability (over those with a value)."""
    groups: dict[str, list[Item]] = {}
    for item in found:
        groups.setdefault(item.kind or (f"service:{item.service}" if item.service else "?"),
                          []).append(item)
    out = []
    for kind, members in sorted(groups.items()):
        values = [i.availability for i in members if i.availability is not None]
        out.append(dict(zip(SUMMARY_COLUMNS, (
            pilot.id, kind, len(members), sum(i.lat is not None for i in members),
            sum(i.last_seen_ns is not None and now_ns - i.last_seen_ns < UPTIME_DAYS * 86400
                * NS for i in members),
            sum(values) / len(values) if values else None), strict=True)))
    return out


def interfaces(pilot: Pilot, public_url: str) -> list[tuple[str, str]]:
    """The open interfaces that serve this pilot, and their URLs."""
    open_ = "without a key" if pilot.published.open_data else "with a viewer key"
    return [(f"OGC API - Features (inventory, {open_})", f"{public_url}/ogc"),
            ("devices as GeoJSON", f"{public_url}/ogc/collections/devices/items?pilot="
             f"{pilot.id}"),
            ("this table (viewer key)", f"{public_url}/api/v1/exports/inventory?pilot="
             f"{pilot.id}&format=csv"),
            (f"DCAT-AP catalogue of the open datasets ({open_})", f"{public_url}/catalog.ttl")]


def to_xlsx(rows: Sequence[dict[str, Any]], summary_rows: Sequence[dict[str, Any]],
            links: Sequence[tuple[str, str]]) -> bytes:
    book = workbook()
    sheet(book, "inventory", NAMES, ([r[n].replace(tzinfo=None) if isinstance(r[n], datetime)
                                      else r[n] for n in NAMES] for r in rows))
    sheet(book, "summary", SUMMARY_COLUMNS, [
        *([r[n] for n in SUMMARY_COLUMNS] for r in summary_rows), [],
        ["open interface", "URL"], *([name, url] for name, url in links)])
    return save(book)


def to_geojson(features: Sequence[dict[str, Any]], summary_rows: Sequence[dict[str, Any]],
               links: Sequence[tuple[str, str]]) -> str:
    return json.dumps({"type": "FeatureCollection", "features": list(features),
                       "summary": list(summary_rows),
                       "interfaces": [{"name": n, "url": u} for n, u in links]},
                      ensure_ascii=False)


class InventoryFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    GEOJSON = "geojson"


async def export(fleet: Fleet, uptime: Uptime, pilot: Pilot, fmt: InventoryFormat,
                 public_url: str) -> tuple[bytes, str]:
    """The export's bytes and media type (the route's and `citypilot inventory export`'s)."""
    found = await pilot_inventory(fleet, uptime, pilot)
    rows = [row(i, i.uri(public_url)) for i in found]
    summary_rows = summary(pilot, found, time.time_ns())
    links = interfaces(pilot, public_url)
    if fmt is InventoryFormat.CSV:
        return to_csv(rows).encode(), "text/csv; charset=utf-8"
    if fmt is InventoryFormat.XLSX:
        return to_xlsx(rows, summary_rows, links), XLSX_MEDIA_TYPE
    features = [device_feature(f"{public_url}/ogc", i) for i in found]
    return to_geojson(features, summary_rows, links).encode(), GEOJSON
