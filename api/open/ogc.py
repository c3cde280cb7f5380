"""The infrastructure inventory as OGC API – Features Part 1 (Core, GeoJSON) under `/ogc`.

Two collections: `devices` (one feature per device: `inventory.Item`) and `gateways` (one per
gateway of a visible device or registered for a visible pilot). Coordinates are WGS 84
longitude, latitude (CRS84, the standard's default); a device without registered coordinates
has a null geometry and is left out of `bbox` queries. Every link and each feature's
persistent id (`uri`) is absolute under `public_url` (`CITYPILOT_PUBLIC_URL`). `datetime`
selects devices in service during the interval: installed (when known) before its end and
last seen (when ever seen) after its start. Paging is `limit` (at most 1,000) and `offset`,
with `next`/`prev` links and `numberMatched`/`numberReturned`. The OpenAPI document
(`/openapi.json`) is OpenAPI 3.1, so the OpenAPI 3.0 class is not declared.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from api.fleet import Fleet
from api.kpis.periods import from_ns, midnight, to_ns
from api.kpis.service import timezone_of
from api.open.access import OpenScope, Scope, limited
from api.open.fresh import Fresh
from api.open.inventory import UPTIME_DAYS, Item, Uptime, items
from api.problems import Problem, errors
from ingest.model import IDENT_PATTERN

GEOJSON = "application/geo+json"
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
MAX_LIMIT = 1000
COLLECTIONS = {
    "devices": ("Devices", "Every sensor and counter of the pilots: kind or service, the "
                "metrics it measures with their units, gateway, operator, network, make, "
                f"installation day, last seen, availability and completeness over the last "
                f"{UPTIME_DAYS} days."),
    "gateways": ("Gateways", "The gateways the devices report through, with how many "
                 "devices each serves and when one was last heard."),
}
router = APIRouter(prefix="/ogc", tags=["open data: OGC API – Features"],
                   dependencies=[Depends(limited)],
                   responses=errors(400, 401, 404, 422, 429, 503))
CollectionPath = Annotated[str, Path(description="devices or gateways")]
_FEATURE_ID = re.compile(rf"^({IDENT_PATTERN[1:-1]})\.({IDENT_PATTERN[1:-1]})"
                         rf"(?:\.({IDENT_PATTERN[1:-1]}))?$")


def _base(request: Request) -> str:
    base: str = request.app.state.options.public_url
    return base.rstrip("/") + "/ogc"


def _link(href: str, rel: str, kind: str = "application/json", title: str | None = None
          ) -> dict[str, str]:
    if title:
        return {"href": href, "rel": rel, "type": kind, "title": title}
    return {"href": href, "rel": rel, "type": kind}


def _json(body: dict[str, Any], media_type: str = "application/json") -> Response:
    return Response(orjson.dumps(body), media_type=media_type)


@router.get("", summary="OGC API landing page")
async def landing(request: Request, scope: OpenScope) -> Response:
    base = _base(request)
    root = base[:-len("/ogc")]
    return _json({
        "title": "citypilot infrastructure inventory",
        "description": "The devices and gateways of the Smart City pilots, as OGC API – "
                       "Features (Part 1: Core, GeoJSON).",
        "links": [_link(base, "self"),
                  _link(f"{root}/openapi.json", "service-desc",
                        "application/vnd.oai.openapi+json;version=3.1", "the API definition"),
                  _link(f"{root}/docs", "service-doc", "text/html", "the API documentation"),
                  _link(f"{base}/conformance", "conformance"),
                  _link(f"{base}/collections", "data")]})


@router.get("/conformance", summary="The conformance classes implemented")
async def conformance(scope: OpenScope) -> Response:
    return _json({"conformsTo": list(CONFORMANCE)})


def _collection(base: str, collection_id: str, bbox: list[float] | None) -> dict[str, Any]:
    title, description = COLLECTIONS[collection_id]
    here = f"{base}/collections/{collection_id}"
    body: dict[str, Any] = {
        "id": collection_id, "title": title, "description": description,
        "itemType": "feature", "crs": [CRS84],
        "links": [_link(here, "self"), _link(f"{here}/items", "items", GEOJSON)]}
    if bbox is not None:
        body["extent"] = {"spatial": {"bbox": [bbox], "crs": CRS84}}
    return body


def _extent(found: Sequence[Item]) -> list[float] | None:
    lons = [i.lon for i in found if i.lon is not None and i.lat is not None]
    lats = [i.lat for i in found if i.lon is not None and i.lat is not None]
    return [min(lons), min(lats), max(lons), max(lats)] if lons else None


def _fleet(request: Request) -> Fleet:
    fleet: Fleet = request.app.state.fleet
    return fleet


@router.get("/collections", summary="The collections: devices and gateways")
async def collections(request: Request, scope: OpenScope) -> Response:
    base = _base(request)
    bbox = _extent(await _listed(request, scope, scope.only(None)))
    return _json({"links": [_link(f"{base}/collections", "self")],
                  "collections": [_collection(base, c, bbox) for c in COLLECTIONS]})


def _known(collection_id: str) -> None:
    if collection_id not in COLLECTIONS:
        raise Problem(404, f"no collection {collection_id[:70]!r}: there are devices and "
                      "gateways")


@router.get("/collections/{collection_id}", summary="One collection")
async def collection(request: Request, scope: OpenScope, collection_id: CollectionPath
                     ) -> Response:
    _known(collection_id)
    bbox = _extent(await _listed(request, scope, scope.only(None)))
    return _json(_collection(_base(request), collection_id, bbox))


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        parts = [float(p) for p in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 4 or not all(math.isfinite(p) for p in parts) or \
            parts[1] > parts[3] or not (-90 <= parts[1] and parts[3] <= 90):
        raise Problem(400, "bbox must be four numbers minlon,minlat,maxlon,maxlat (CRS84, "
                      "minlat <= maxlat)")
    return parts[0], parts[1], parts[2], parts[3]


def _instant(text: str) -> int | None:
    if text in ("..", ""):
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Problem(400, f"datetime {text[:40]!r} is not RFC 3339 with an offset (or ..)")
    return to_ns(moment)


def _interval(text: str | None) -> tuple[int | None, int | None] | None:
    if text is None:
        return None
    if "/" in text:
        lo_text, _, hi_text = text.partition("/")
        lo, hi = _instant(lo_text), _instant(hi_text)
        if lo is not None and hi is not None and hi < lo:
            raise Problem(400, "datetime: the interval ends before it starts")
        return lo, hi
    at = _instant(text)
    return at, at


def _inside(lon: float | None, lat: float | None, box: tuple[float, float, float, float]
            ) -> bool:
    if lon is None or lat is None:
        return False
    west, south, east, north = box
    if not south <= lat <= north:
        return False
    return west <= lon <= east if west <= east else (lon >= west or lon <= east)  # antimeridian


def _in_service(installed_ns: int | None, last_seen_ns: int | None,
                interval: tuple[int | None, int | None]) -> bool:
    lo, hi = interval
    if installed_ns is not None and hi is not None and installed_ns > hi:
        return False
    return not (last_seen_ns is not None and lo is not None and last_seen_ns < lo)


def _time(ns: int | None) -> str | None:
    return from_ns(ns).isoformat().replace("+00:00", "Z") if ns is not None else None


def device_feature(base: str, item: Item) -> dict[str, Any]:
    """`base`: the public URL followed by /ogc."""
    here = item.uri(base.removesuffix("/ogc"))
    gateway = f"{base}/collections/gateways/items/{item.pilot}.{item.gateway}"
    geometry = {"type": "Point", "coordinates": [item.lon, item.lat]} \
        if item.lon is not None and item.lat is not None else None
    return {"type": "Feature", "id": item.feature_id, "geometry": geometry, "properties": {
        "uri": here, "pilot": item.pilot, "gateway": item.gateway, "gateway_uri": gateway,
        "device": item.device, "registered": item.registered, "kind": item.kind,
        "service": item.service,
        "metrics": [{"name": m.name, "unit": m.unit, "description": m.description}
                    for m in item.metrics],
        "location": item.location, "operator": item.operator, "network": item.network,
        "manufacturer": item.manufacturer, "model": item.model,
        "installed": item.installed.isoformat() if item.installed else None,
        "interval_s": item.interval_s, "last_seen": _time(item.last_seen_ns),
        f"availability_{UPTIME_DAYS}d": item.availability,
        f"completeness_{UPTIME_DAYS}d": item.completeness},
        "links": [_link(here, "self", GEOJSON), _link(gateway, "related", GEOJSON, "gateway"),
                  _link(f"{base}/collections/devices", "collection")]}


def _gateway_features(base: str, found: Sequence[Item], scope: Scope, pilots: list[str]
                      ) -> list[dict[str, Any]]:
    names: dict[tuple[str, str], tuple[str | None, str | None]] = {}
    if scope.keyed:
        for p in pilots:
            for g in scope.pilots[p].gateways:
                names[(p, g.id)] = (g.name, g.location)
    served: dict[tuple[str, str], list[Item]] = {}
    for item in found:
        served.setdefault((item.pilot, item.gateway), []).append(item)
        names.setdefault((item.pilot, item.gateway), (None, None))
    for p in pilots:  # names of registered gateways that serve a shown device
        for g in scope.pilots[p].gateways:
            if (p, g.id) in names:
                names[(p, g.id)] = (g.name, g.location)
    out = []
    for (pilot, gateway), (name, location) in sorted(names.items()):
        devices = served.get((pilot, gateway), [])
        seen = [i.last_seen_ns for i in devices if i.last_seen_ns is not None]
        here = f"{base}/collections/gateways/items/{pilot}.{gateway}"
        out.append({"type": "Feature", "id": f"{pilot}.{gateway}",
                    "geometry": _centre(devices), "properties": {
                        "uri": here, "pilot": pilot, "gateway": gateway, "name": name,
                        "location": location, "devices": len(devices),
                        "last_seen": _time(max(seen) if seen else None)},
                    "links": [_link(here, "self", GEOJSON),
                              _link(f"{base}/collections/gateways", "collection")]})
    return out


def _centre(devices: Sequence[Item]) -> dict[str, Any] | None:
    """Where a gateway is, as far as known: the centre of its located devices."""
    box = _extent(devices)
    return {"type": "Point", "coordinates": [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]} \
        if box else None


def _installed_ns(item: Item, scope: Scope) -> int | None:
    if item.installed is None:
        return None
    return midnight(item.installed, timezone_of(scope.pilots[item.pilot]))


async def _listed(request: Request, scope: Scope, pilots: list[str]) -> list[Item]:
    """The devices of these pilots the scope shows, as of at most a few seconds ago."""
    listed: Fresh[list[Item]] = request.app.state.open_items
    return await listed.get((scope.key(), tuple(pilots)),
                            lambda: items(_fleet(request), scope, pilots))


def _uptime(request: Request) -> Uptime:
    uptime: Uptime = request.app.state.uptime
    return uptime


async def _matching(request: Request, scope: Scope, collection_id: str, pilot: str | None,
                    box: tuple[float, float, float, float] | None,
                    interval: tuple[int | None, int | None] | None
                    ) -> tuple[list[Item], list[dict[str, Any]]]:
    """The devices (for `devices`) or gateway features (for `gateways`) that match."""
    pilots = scope.only(pilot)
    found = await _listed(request, scope, pilots)
    if collection_id == "devices":
        return [i for i in found if (box is None or _inside(i.lon, i.lat, box)) and (
            interval is None or _in_service(_installed_ns(i, scope), i.last_seen_ns,
                                            interval))], []
    out = []
    for feature in _gateway_features(_base(request), found, scope, pilots):
        point = (feature["geometry"] or {}).get("coordinates") or (None, None)
        seen = feature["properties"]["last_seen"]
        if (box is None or _inside(point[0], point[1], box)) and (
                interval is None or _in_service(None, _instant(seen) if seen else None,
                                                interval)):
            out.append(feature)
    return [], out


def _page_link(here: str, query: dict[str, Any], rel: str) -> dict[str, str]:
    return _link(f"{here}?{urlencode(query)}", rel, GEOJSON)


@router.get("/collections/{collection_id}/items", summary="The features of a collection",
            response_class=JSONResponse,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                             "description": "a GeoJSON FeatureCollection"}})
async def features(
    request: Request, scope: OpenScope, collection_id: CollectionPath,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="features per page")] = 10,
    offset: Annotated[int, Query(ge=0, le=10**9, description="features to skip")] = 0,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CRS84)",
                                      max_length=200)] = None,
    datetime_: Annotated[str | None, Query(alias="datetime", max_length=100, description=(
        "an instant or an interval a/b (.. for open) in RFC 3339"))] = None,
    pilot: Annotated[str | None, Query(pattern=IDENT_PATTERN, description="one pilot")
                     ] = None,
) -> Response:
    """A page of features: `limit` from `offset`, filtered by `bbox` and `datetime`."""
    _known(collection_id)
    devices, gateways = await _matching(request, scope, collection_id, pilot, _bbox(bbox),
                                        _interval(datetime_))
    base = _base(request)
    if collection_id == "devices":
        matched = len(devices)
        page = [device_feature(base, i) for i in await _uptime(request).add(
            devices[offset:offset + limit])]
    else:
        matched, page = len(gateways), gateways[offset:offset + limit]
    here = f"{base}/collections/{collection_id}/items"
    query = {k: v for k, v in {"bbox": bbox, "datetime": datetime_, "pilot": pilot}.items()
             if v is not None} | {"limit": limit}
    links = [_page_link(here, query | {"offset": offset}, "self")]
    if offset + limit < matched:
        links.append(_page_link(here, query | {"offset": offset + limit}, "next"))
    if offset > 0:
        links.append(_page_link(here, query | {"offset": max(0, offset - limit)}, "prev"))
    return _json({"type": "FeatureCollection", "features": page,
                  "numberMatched": matched, "numberReturned": len(page),
                  "timeStamp": _time(time.time_ns()), "links": links}, GEOJSON)


@router.get("/collections/{collection_id}/items/{feature_id}", summary="One feature",
            response_class=JSONResponse,
            responses={200: {"content": {GEOJSON: {"schema": {"type": "object"}}},
                             "description": "a GeoJSON Feature"}})
async def feature(request: Request, scope: OpenScope, collection_id: CollectionPath,
                  feature_id: Annotated[str, Path(max_length=200, description=(
                      "pilot.gateway.device, or pilot.gateway"))]) -> Response:
    _known(collection_id)
    match = _FEATURE_ID.fullmatch(feature_id)
    parts = 3 if collection_id == "devices" else 2
    if match is None or len([g for g in match.groups() if g]) != parts:
        raise Problem(404, f"no {collection_id[:-1]} {feature_id[:70]!r}: ids read "
                      + ("pilot.gateway.device" if parts == 3 else "pilot.gateway"))
    pilot = match.group(1)
    if pilot not in scope.pilots:
        scope.only(pilot)  # the 401 without a key, the 404 with one
    devices, gateways = await _matching(request, scope, collection_id, pilot, None, None)
    base = _base(request)
    if collection_id == "devices":
        wanted = [i for i in devices if i.feature_id == feature_id]
        found = [device_feature(base, i) for i in await _uptime(request).add(wanted)]
    else:
        found = [g for g in gateways if g["id"] == feature_id]
    if not found:
        raise Problem(404, f"no {collection_id[:-1]} {feature_id!r} in the open inventory")
    return _json(found[0], GEOJSON)
