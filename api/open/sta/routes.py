"""OGC SensorThings API 1.1, read-only, under `/sta/v1.1`.

The service root lists the entity sets and `serverSettings.conformance`; every other path is
resolved segment by segment (`Things(1)/Datastreams(2)/Observations`, to any depth), ending
in an entity set, an entity, a property, `$value` or `$ref`. Query options are `odata.py`'s,
entities `entities.py`'s, Observations `observations.py`'s. What the caller may read is the
open routes' scope (`api.open.access`): without a key the open pilots' public kinds only.
A missing entity is a 404 problem, a request this service does not serve a 400 naming why.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from api.kpis.service import timezone_of
from api.open.access import OpenScope, limited
from api.open.fresh import Fresh
from api.open.sta.entities import NAVIGATION, Entity, Model, build
from api.open.sta.observations import Observation, Reading
from api.open.sta.odata import ODataError, Options, matches, parse_options
from api.problems import Problem, errors

PREFIX = "/sta/v1.1"
CONFORMANCE = [
    "http://www.opengis.net/spec/iot_sensing/1.1/req/datamodel",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/resource-path/resource-path-to-entities",
    "http://www.opengis.net/spec/iot_sensing/1.1/req/request-data",
]
router = APIRouter(prefix=PREFIX, tags=["open data: SensorThings API"],
                   dependencies=[Depends(limited)], responses=errors(400, 401, 404, 429, 503))
_SEGMENT = re.compile(r"^([A-Za-z]+)(?:\((\d{1,19})\))?$")


@dataclass(slots=True)
class _Many:
    set: str
    ids: list[int]  # for Observations: the Datastreams whose Observations


@dataclass(slots=True)
class _One:
    set: str
    id: int
    obs: Observation | None = None


@dataclass(slots=True)
class _Prop:
    name: str
    value: Any


class _Request:
    """One request's model, base URL and store."""

    def __init__(self, request: Request, model: Model, tz_of: dict[str, Any]) -> None:
        self.request, self.model, self.tz_of = request, model, tz_of
        public: str = request.app.state.options.public_url
        self.base = public.rstrip("/") + PREFIX
        self.store = request.app.state.store

    def entity(self, entity_set: str, number: int) -> Entity:
        found = self.model.sets[entity_set].get(number)
        if found is None:
            raise Problem(404, f"no {entity_set}({number})")
        return found

    async def observation(self, number: int, among: list[int] | None = None) -> Observation:
        reading = Reading(self.store, self.model, [], Options(), self.tz_of)
        found = await reading.one(number)
        if found is None or (among is not None and found.datastream not in among):
            raise Problem(404, f"no Observations({number})")
        return found

    async def resolve(self, segments: list[str]) -> _Many | _One | _Prop:
        head = _SEGMENT.fullmatch(segments[0])
        if head is None or head.group(1) not in NAVIGATION:
            raise Problem(404, f"no entity set {segments[0][:60]!r}: there are "
                          + ", ".join(NAVIGATION))
        entity_set = head.group(1)
        every = list(self.model.sources) if entity_set == "Observations" else \
            sorted(self.model.sets[entity_set])
        at: _Many | _One | _Prop = _Many(entity_set, every)
        if head.group(2):
            at = await self._pick(_Many(entity_set, every), int(head.group(2)))
        for segment in segments[1:]:
            at = await self._step(at, segment)
        return at

    async def _pick(self, many: _Many, number: int) -> _One:
        if many.set == "Observations":
            return _One("Observations", number, await self.observation(number, many.ids))
        if number not in many.ids:
            raise Problem(404, f"no {many.set}({number}) here")
        self.entity(many.set, number)
        return _One(many.set, number)

    async def _step(self, at: _Many | _One | _Prop, segment: str) -> _Many | _One | _Prop:
        match = _SEGMENT.fullmatch(segment)
        if isinstance(at, _Many):
            if match is None or match.group(1) != at.set or not match.group(2):
                raise Problem(400, f"{segment[:60]!r} after a collection: address one entity "
                              f"as {at.set}(id)")
            return await self._pick(at, int(match.group(2)))
        if isinstance(at, _Prop) or match is None:
            raise Problem(404, f"no path segment {segment[:60]!r} here")
        name = match.group(1)
        if name in NAVIGATION[at.set]:
            target, many = NAVIGATION[at.set][name]
            ids = self._links(at, name)
            step = _Many(target, ids) if many else (_One(target, ids[0]) if ids else None)
            if step is None:
                raise Problem(404, f"{at.set}({at.id}) has no {name}")
            if not match.group(2):
                return step
            if not isinstance(step, _Many):
                raise Problem(400, f"{name} is one entity: address it without an id")
            return await self._pick(step, int(match.group(2)))
        if match.group(2):
            raise Problem(404, f"{at.set} has no navigation property {name!r}")
        props = self.props(at)
        if name not in props:
            raise Problem(404, f"{at.set} has no property {name!r}")
        return _Prop(name, props[name])

    def _links(self, at: _One, nav: str) -> list[int]:
        if at.obs is not None:
            return [at.obs.datastream if nav == "Datastream" else at.obs.foi]
        if nav == "Observations":
            return [at.id] if at.set == "Datastreams" else self.model.streams_of(at.id)
        return self.entity(at.set, at.id).nav.get(nav, [])

    def props(self, at: _One) -> dict[str, Any]:
        base = at.obs.props() if at.obs is not None else self.entity(at.set, at.id).props
        return {"id": at.id, **base}

    def link(self, entity_set: str, number: int) -> str:
        return f"{self.base}/{entity_set}({number})"

    async def render(self, at: _One, options: Options) -> dict[str, Any]:
        here = self.link(at.set, at.id)
        body: dict[str, Any] = {"@iot.id": at.id, "@iot.selfLink": here}
        body |= {k: v for k, v in self.props(at).items() if k != "id"}
        body |= {f"{nav}@iot.navigationLink": f"{here}/{nav}" for nav in NAVIGATION[at.set]}
        if options.select is not None:
            keep = set(options.select)
            body = {k: v for k, v in body.items() if k in keep or k.split("@")[0] in keep
                    or (k == "@iot.id" and "id" in keep)}
        for nav, inner in options.expand.items():
            target, many = NAVIGATION[at.set][nav]
            ids = self._links(at, nav)
            if many:
                page = await self.collection(_Many(target, ids), inner, f"{here}/{nav}", {})
                body[nav] = page["value"]
                if "@iot.nextLink" in page:
                    body[f"{nav}@iot.nextLink"] = page["@iot.nextLink"]
            elif ids:
                one = _One(target, ids[0])
                if target == "Observations":  # (no to-one link leads to an Observation)
                    continue
                body[nav] = await self.render(one, Options(select=inner.select))
        return body

    async def collection(self, many: _Many, options: Options, url: str,
                         query: dict[str, str]) -> dict[str, Any]:
        if many.set == "Observations":
            page, total, more = await Reading(self.store, self.model, many.ids, options,
                                              self.tz_of).page()
            ones = [_One("Observations", o.id, o) for o in page]
        else:
            entities = [self.entity(many.set, i) for i in many.ids]
            if options.filter is not None:
                node = options.filter
                entities = [e for e in entities if matches(node, {"id": e.id, "@iot.id": e.id,
                                                                  **e.props})]
            for name, descending in reversed(options.orderby):
                entities.sort(key=_sort_key(name), reverse=descending)
            total = len(entities) if options.count else None
            more = len(entities) > options.skip + options.top
            ones = [_One(e.set, e.id) for e in entities[options.skip:options.skip
                                                         + options.top]]
        body: dict[str, Any] = {}
        if total is not None:
            body["@iot.count"] = total
        if more:
            body["@iot.nextLink"] = f"{url}?" + urlencode(
                query | {"$top": str(options.top), "$skip": str(options.skip + options.top)},
                safe="$")
        body["value"] = [await self.render(one, options) for one in ones]
        return body


def _sort_key(name: str) -> Callable[[Entity], tuple[int, Any]]:
    """Entities by a property, those without it first (numbers before text)."""
    def key(entity: Entity) -> tuple[int, Any]:
        value = entity.id if name in ("id", "@iot.id") else entity.props.get(name)
        if value is None:
            return (0, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (1, value)
        return (2, str(value))
    return key


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def _context(request: Request, scope: Any) -> _Request:
    models: Fresh[Model] = request.app.state.sta_models
    public: str = request.app.state.options.public_url.rstrip("/")
    model = await models.get((scope.key(), public),
                             lambda: build(request.app.state.fleet, scope, public))
    return _Request(request, model, {p: timezone_of(x) for p, x in scope.pilots.items()})


@router.get("", summary="SensorThings service root")
async def root(request: Request, scope: OpenScope) -> Response:
    base = str(request.app.state.options.public_url).rstrip("/") + PREFIX
    return _json({"value": [{"name": s, "url": f"{base}/{s}"} for s in NAVIGATION],
                  "serverSettings": {"conformance": CONFORMANCE}})


@router.get("/{path:path}", summary="SensorThings entities, properties and references")
async def resource(request: Request, scope: OpenScope, path: str) -> Response:
    """Any SensorThings resource path with its query options."""
    segments = [s for s in path.split("/") if s]
    if not segments:
        return await root(request, scope)
    tail = segments[-1] if segments[-1] in ("$value", "$ref") else None
    if tail:
        segments = segments[:-1]
    if not segments:
        raise Problem(404, f"{tail} needs a resource before it")
    here = await _context(request, scope)
    query = {k: v for k, v in request.query_params.items()}
    at = await here.resolve(segments)
    try:
        navigation = set(NAVIGATION[at.set]) if not isinstance(at, _Prop) else set()
        options = parse_options(query, navigation)
        if isinstance(at, _Prop):
            if tail == "$value":
                value = at.value
                text = value if isinstance(value, str) else orjson.dumps(value).decode()
                return Response(text, media_type="text/plain; charset=utf-8")
            if tail == "$ref":
                raise ODataError("$ref follows an entity or a collection, not a property")
            return _json({at.name: at.value})
        if tail == "$value":
            raise ODataError("$value follows a property")
        url = f"{here.base}/{'/'.join(segments)}"
        if isinstance(at, _One):
            if tail == "$ref":
                return _json({"@iot.selfLink": here.link(at.set, at.id)})
            return _json(await here.render(at, options))
        if tail == "$ref":
            options = Options(options.top, options.skip, options.count, options.orderby,
                              ("@iot.selfLink",), {}, options.filter)
            body = await here.collection(at, options, url + "/$ref", query)
            body["value"] = [{"@iot.selfLink": v["@iot.selfLink"]} for v in body["value"]]
            return _json(body)
        return _json(await here.collection(at, options, url, query))
    except ODataError as exc:
        raise Problem(400, str(exc)) from None
