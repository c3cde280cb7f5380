"""The SensorThings entities of what a scope shows: devices as Things, their places as
Locations, kinds as Sensors, metrics as ObservedProperties, device x metric as Datastreams.

Built from the inventory (`api.open.inventory.items`, so the same devices and kinds the OGC
API shows) and from the store: a Datastream exists for each field a device has reported in a
shown kind, its phenomenonTime from its first to its last point. Service use appears only as
suppressed daily counts: a Thing per (pilot, service) with two Datastreams, `uses` and
`users`, whose Observations `observations.py` computes from `api.open.usage`. Every entity
has a numeric id kept in the catalogue (`Catalog.ids`): the same after a restart. A model is
remembered per scope and renewed in the background (`api.open.fresh`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from api.fleet import Fleet
from api.kpis.periods import from_ns, midnight
from api.kpis.pull import USES
from api.kpis.service import timezone_of
from api.open.access import Scope
from api.open.inventory import Item, items
from api.open.suppression import RULE
from ingest.model import DELAY_FIELD, EVENT_MEASUREMENT
from ingest.stores.base import Seen
from ingest.units import CONCEPTS, DEFINITIONS, lookup

OM = "http://www.opengis.net/def/observationType/OGC-OM/2.0/"
GEOJSON = "application/geo+json"
USAGE_MEASURES = {"uses": "uses of the service, counted",
                  "users": "distinct pseudonymous users of the service"}
# Entity set -> navigation property -> (target set, to many).
NAVIGATION: dict[str, dict[str, tuple[str, bool]]] = {
    "Things": {"Locations": ("Locations", True),
               "HistoricalLocations": ("HistoricalLocations", True),
               "Datastreams": ("Datastreams", True)},
    "Locations": {"Things": ("Things", True),
                  "HistoricalLocations": ("HistoricalLocations", True)},
    "HistoricalLocations": {"Thing": ("Things", False), "Locations": ("Locations", True)},
    "Sensors": {"Datastreams": ("Datastreams", True)},
    "ObservedProperties": {"Datastreams": ("Datastreams", True)},
    "Datastreams": {"Thing": ("Things", False), "Sensor": ("Sensors", False),
                    "ObservedProperty": ("ObservedProperties", False),
                    "Observations": ("Observations", True)},
    "Observations": {"Datastream": ("Datastreams", False),
                     "FeatureOfInterest": ("FeaturesOfInterest", False)},
    "FeaturesOfInterest": {"Observations": ("Observations", True)},
}


@dataclass(slots=True)
class Entity:
    set: str
    id: int
    props: dict[str, Any]
    nav: dict[str, list[int]] = field(default_factory=dict)  # to Observations: not kept


@dataclass(frozen=True, slots=True)
class Source:
    """Where a Datastream's Observations come from: one device's field of one kind, or a
    service's suppressed daily `uses` or `users` (`usage`)."""

    pilot: str
    gateway: str
    device: str
    kind: str
    metric: str
    usage: bool = False
    min_users: int = 0


@dataclass(slots=True)
class Model:
    sets: dict[str, dict[int, Entity]]
    sources: dict[int, Source]  # Datastream id -> its source
    foi: dict[int, int]  # Datastream id -> the FeatureOfInterest of its Observations

    def streams_of(self, foi_id: int) -> list[int]:
        return [d for d, f in self.foi.items() if f == foi_id]


def _time(ns: int | None) -> str | None:
    return from_ns(ns).isoformat().replace("+00:00", "Z") if ns is not None else None


def _point(item: Item) -> dict[str, Any] | None:
    if item.lat is None or item.lon is None:
        return None
    return {"type": "Point", "coordinates": [item.lon, item.lat]}


def _area(found: list[Item]) -> dict[str, Any] | None:
    """The bounding polygon of the located devices (a point when there is one place)."""
    places = [(i.lon, i.lat) for i in found if i.lat is not None and i.lon is not None]
    if not places:
        return None
    w, e = min(p[0] for p in places), max(p[0] for p in places)
    s, n = min(p[1] for p in places), max(p[1] for p in places)
    if (w, s) == (e, n):
        return {"type": "Point", "coordinates": [w, s]}
    return {"type": "Polygon", "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]}


class _Builder:
    """Entities by name first (`Set/key`); numbers are given at the end, all at once."""

    def __init__(self) -> None:
        self.props: dict[str, dict[str, Any]] = {}
        self.links: dict[str, dict[str, list[str]]] = {}
        self.sources: dict[str, Source] = {}
        self.foi: dict[str, str] = {}

    def add(self, name: str, props: dict[str, Any], **links: list[str]) -> str:
        if name not in self.props:
            self.props[name] = props
            self.links[name] = {}
        for nav, targets in links.items():
            known = self.links[name].setdefault(nav, [])
            known += [t for t in targets if t not in known]
        return name

    def model(self, numbers: dict[str, int]) -> Model:
        sets: dict[str, dict[int, Entity]] = {s: {} for s in NAVIGATION}
        for name, props in self.props.items():
            entity_set = name.partition("/")[0]
            nav = {k: sorted(numbers[t] for t in v) for k, v in self.links[name].items()}
            number = numbers[name]
            sets[entity_set][number] = Entity(entity_set, number, props, nav)
        return Model(sets, {numbers[d]: s for d, s in self.sources.items()},
                     {numbers[d]: numbers[f] for d, f in self.foi.items()})


def _link_back(b: _Builder) -> None:
    """Each link's inverse (a Datastream's Thing lists it among its Datastreams, ...): the
    navigation property of the target's set that leads back to the source's set."""
    for name, links in list(b.links.items()):
        entity_set = name.partition("/")[0]
        for nav, targets in list(links.items()):
            target_set = NAVIGATION[entity_set][nav][0]
            back = next(n for n, (t, _) in NAVIGATION[target_set].items() if t == entity_set)
            for target in targets:
                b.add(target, b.props[target], **{back: [name]})


def _sensor(b: _Builder, kind: str, public: str) -> str:
    return b.add(f"Sensors/{kind}", {
        "name": kind, "description": f"The {kind.replace('_', ' ')} devices of the pilots "
        "(their make and model are in the inventory).", "encodingType": "text/html",
        "metadata": f"{public}/ogc/collections/devices", "properties": {"kind": kind}})


def _observed(b: _Builder, metric: str, public: str) -> str:
    known = lookup(metric)
    name = f"ObservedProperties/{metric}"
    return b.add(name, {
        "name": metric, "description": known.description if known else metric,
        "definition": CONCEPTS.get(metric, f"{public}/sta/v1.1/ObservedProperties?"
                                           f"$filter=name eq '{metric}'"),
        "properties": {}})


def _unit(metric: str) -> dict[str, str | None]:
    known = lookup(metric)
    unit = DEFINITIONS.get(known.unit) if known else None
    if known is None or unit is None:
        return {"name": None, "symbol": None, "definition": None}
    return {"name": unit.name, "symbol": known.unit, "definition": unit.uri}


def _device(b: _Builder, item: Item, public: str, tz_of: dict[str, Any],
            first: dict[tuple[str, ...], int], last: dict[tuple[str, ...], int]) -> None:
    key = item.feature_id
    point = _point(item)
    what = item.kind.replace("_", " ") if item.kind else "device"
    where = f" at {item.location}" if item.location else ""
    thing = f"Things/{key}"
    links: dict[str, list[str]] = {}
    if point is not None:
        location = b.add(f"Locations/{key}", {
            "name": key, "description": item.location or f"where {item.device} is installed",
            "encodingType": GEOJSON, "location": point}, Things=[thing])
        since = midnight(item.installed, tz_of[item.pilot]) if item.installed else \
            item.last_seen_ns
        links["Locations"] = [location]
        if since is not None:
            links["HistoricalLocations"] = [b.add(
                f"HistoricalLocations/{key}", {"time": _time(since)}, Thing=[thing],
                Locations=[location])]
    foi = b.add(f"FeaturesOfInterest/{key}", {
        "name": key, "description": f"what {item.device} observes{where}",
        "encodingType": GEOJSON, "feature": point})
    streams = []
    for kind in item.kinds:
        for metric in sorted({f for (k, f, *d) in last if k == kind
                              and tuple(d) == item.key}):
            series = (kind, metric, *item.key)
            name = f"Datastreams/{key}/{kind}/{metric}"
            lo, hi = first.get(series), last[series]
            known = lookup(metric)
            what_metric = known.description if known else metric
            b.add(name, {
                "name": f"{metric} of {key}",
                "description": f"{what_metric} measured by {item.device}{where}",
                "unitOfMeasurement": _unit(metric), "observationType": OM + "OM_Measurement",
                "phenomenonTime": f"{_time(lo or hi)}/{_time(hi)}",
                "properties": {"pilot": item.pilot, "kind": kind, "metric": metric}},
                Thing=[thing], Sensor=[_sensor(b, kind, public)],
                ObservedProperty=[_observed(b, metric, public)])
            b.sources[name] = Source(*item.key, kind, metric)
            b.foi[name] = foi
            streams.append(name)
    links["Datastreams"] = streams
    b.add(thing, {
        "name": key, "description": f"{what} {item.device} of pilot {item.pilot}, gateway "
        f"{item.gateway}{where}", "properties": {
            "pilot": item.pilot, "gateway": item.gateway, "device": item.device,
            "kind": item.kind, "service": item.service, "operator": item.operator,
            "network": item.network, "manufacturer": item.manufacturer, "model": item.model,
            "installed": item.installed.isoformat() if item.installed else None,
            "registered": item.registered, "uri": item.uri(public)}}, **links)


def _usage(b: _Builder, scope: Scope, found: list[Item], uses: list[Seen]) -> None:
    services: dict[str, set[str]] = {}
    for seen in uses:
        if seen.tag("service"):
            services.setdefault(seen.pilot, set()).add(seen.tag("service"))
    for pilot, names in sorted(services.items()):
        k = scope.pilots[pilot].published.open_min_users
        area = b.add(f"FeaturesOfInterest/{pilot}", {
            "name": f"{pilot} pilot area", "description": f"the area the devices of pilot "
            f"{pilot} are in", "encodingType": GEOJSON,
            "feature": _area([i for i in found if i.pilot == pilot])})
        for service in sorted(names):
            thing = f"Things/{pilot}/service/{service}"
            streams = []
            for measure, text in USAGE_MEASURES.items():
                name = f"Datastreams/{pilot}/service/{service}/{measure}"
                b.add(name, {
                    "name": f"{service} {measure} per day ({pilot})",
                    "description": f"{text}, per local day; {RULE.format(k=k)}",
                    "unitOfMeasurement": {"name": measure, "symbol": "{" + measure + "}",
                                          "definition": "http://qudt.org/vocab/unit/NUM"},
                    "observationType": OM + "OM_CountObservation",
                    "properties": {"pilot": pilot, "service": service, "min_users": k}},
                    Thing=[thing], Sensor=[b.add("Sensors/usage", {
                        "name": "service use", "description": "uses of the pilot's services "
                        "by citizens, counted per day; users are pseudonymous and appear "
                        "only as counts", "encodingType": "text/html",
                        "metadata": "/open/v1/usage", "properties": {}})],
                    ObservedProperty=[b.add(f"ObservedProperties/usage/{measure}", {
                        "name": measure, "description": text, "definition":
                        "http://qudt.org/vocab/quantitykind/Count", "properties": {}})])
                b.sources[name] = Source(pilot, "", "", EVENT_MEASUREMENT, measure,
                                         usage=True, min_users=k)
                b.foi[name] = area
                streams.append(name)
            b.add(thing, {"name": f"{pilot} {service}", "description": f"the {service} "
                          f"service of pilot {pilot}, its use by citizens",
                          "properties": {"pilot": pilot, "service": service}},
                  Datastreams=streams)


async def build(fleet: Fleet, scope: Scope, public: str) -> Model:
    """Every entity the scope shows."""
    pilots = scope.only(None)
    found = await items(fleet, scope, pilots)
    fields = await fleet.store.fields()
    where = (("pilot", tuple(pilots)),)
    kinds = sorted({k for i in found for k in i.kinds})
    pairs = [(k, f) for k in kinds for f in fields.get(k, []) if f != DELAY_FIELD]
    answers = await asyncio.gather(
        *(fleet.store.first_seen([k], f, where=where) for k, f in pairs),
        *(fleet.store.last_seen([k], f, where=where) for k, f in pairs),
        fleet.store.last_seen([EVENT_MEASUREMENT], "value", where=(*where, *USES),
                              by=("service",)))
    first: dict[tuple[str, ...], int] = {}
    last: dict[tuple[str, ...], int] = {}
    for i, (kind, metric) in enumerate(pairs):
        for into, seen in ((first, answers[i]), (last, answers[len(pairs) + i])):
            for s in seen:
                into[(kind, metric, s.pilot, s.gateway, s.device)] = s.ts
    b = _Builder()
    tz_of = {p: timezone_of(scope.pilots[p]) for p in pilots}
    for item in found:
        _device(b, item, public, tz_of, first, last)
    _usage(b, scope, found, answers[-1])
    _link_back(b)
    return b.model(fleet.catalog.ids(list(b.props)))
