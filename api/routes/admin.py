"""Admin routes: the pilot registry and the API keys.

A pilot-limited admin edits only its pilots' registry entries; keys are managed only with an
admin key for every pilot (a limited admin could otherwise mint a key for other pilots).
Changes count at once: the API reads the catalogue on every request.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Response
from starlette.concurrency import run_in_threadpool

from api.auth import Admin, check_pilot, visible
from api.catalog import ApiKey, Pilot, Registry
from api.deps import MAX_TS_NS, CatalogDep
from api.kpis.periods import from_ns, to_ns
from api.problems import Problem, errors, invalid
from api.schemas import KeyCreated, KeyOut, KeyRequest, Loaded
from ingest.model import IDENT_PATTERN

router = APIRouter(prefix="/api/v1", responses=errors(400, 401, 403, 422, 503))
PilotPath = Annotated[str, Path(pattern=IDENT_PATTERN, description="a pilot id")]
KeyPath = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="a key id")]


@router.get("/registry", response_model=Registry, tags=["registry"])
async def get_registry(key: Admin, catalog: CatalogDep) -> Registry:
    """The registered pilots this key may read, with gateways, devices and services."""
    allowed = set(visible(key, [p.id for p in catalog.pilots()]))
    return Registry(pilots=tuple(p for p in catalog.pilots() if p.id in allowed))


@router.put("/registry", response_model=Loaded, tags=["registry"])
async def put_registry(key: Admin, catalog: CatalogDep, registry: Registry) -> Loaded:
    """Add or replace the pilots of the document (other pilots stay), as `registry load`."""
    for pilot in registry.pilots:
        check_pilot(key, pilot.id)
    return Loaded(pilots=catalog.load(registry))


@router.get("/registry/pilots/{pilot_id}", response_model=Pilot, tags=["registry"],
            responses=errors(404))
async def get_pilot(key: Admin, catalog: CatalogDep, pilot_id: PilotPath) -> Pilot:
    check_pilot(key, pilot_id)
    pilot = catalog.pilot(pilot_id)
    if pilot is None:
        raise Problem(404, f"pilot {pilot_id!r} is not registered")
    return pilot


@router.put("/registry/pilots/{pilot_id}", response_model=Pilot, tags=["registry"])
async def put_pilot(key: Admin, catalog: CatalogDep, pilot_id: PilotPath, pilot: Pilot
                    ) -> Pilot:
    """Register a pilot or replace its entry."""
    check_pilot(key, pilot_id)
    if pilot.id != pilot_id:
        raise invalid(f"the body's id {pilot.id!r} differs from the path's {pilot_id!r}",
                      "body.id")
    catalog.load(Registry(pilots=(pilot,)))
    stored = catalog.pilot(pilot_id)
    assert stored is not None
    return stored


@router.delete("/registry/pilots/{pilot_id}", status_code=204, tags=["registry"],
               responses=errors(404))
async def delete_pilot(key: Admin, catalog: CatalogDep, pilot_id: PilotPath) -> Response:
    """Unregister a pilot (its data stays in the store: it is then listed as seen only)."""
    check_pilot(key, pilot_id)
    if not catalog.delete_pilot(pilot_id):
        raise Problem(404, f"pilot {pilot_id!r} is not registered")
    return Response(status_code=204)


def _key_out(k: ApiKey) -> KeyOut:
    return KeyOut(id=k.id, name=k.name, role=k.role,
                  pilots=sorted(k.pilots) if k.pilots is not None else None,
                  created=from_ns(k.created_ns),
                  expires=from_ns(k.expires_ns) if k.expires_ns is not None else None,
                  state=k.state(time.time_ns()).value)


def _every_pilot(key: ApiKey) -> None:
    if key.pilots is not None:
        raise Problem(403, "keys are managed with an admin key for every pilot")


@router.get("/keys", response_model=list[KeyOut], tags=["keys"])
async def list_keys(key: Admin, catalog: CatalogDep) -> list[KeyOut]:
    """Every key's record (never the key itself)."""
    _every_pilot(key)
    return [_key_out(k) for k in catalog.keys()]


@router.post("/keys", response_model=KeyCreated, status_code=201, tags=["keys"])
async def create_key(key: Admin, catalog: CatalogDep, request: KeyRequest) -> KeyCreated:
    """A new key; the answer holds the key itself, this once."""
    _every_pilot(key)
    expires_ns = None
    if request.expires is not None:
        if request.expires.tzinfo is None:
            raise invalid("`expires` needs a UTC offset", "body.expires")
        expires_ns = to_ns(request.expires)
        if not 0 <= expires_ns < MAX_TS_NS:
            raise invalid("`expires` must lie between 1970 and 2200", "body.expires")
    record, secret = await run_in_threadpool(
        catalog.create_key, request.name, request.role,
        pilots=frozenset(request.pilots) if request.pilots is not None else None,
        expires_ns=expires_ns)
    return KeyCreated(**_key_out(record).model_dump(), key=secret)


@router.delete("/keys/{key_id}", status_code=204, tags=["keys"], responses=errors(404, 409))
async def revoke_key(key: Admin, catalog: CatalogDep, key_id: KeyPath) -> Response:
    """Revoke a key: it is refused from the next request on. Not the key of the request
    itself: that would lock its admin out (`citypilot apikey revoke` or another admin key
    does it)."""
    _every_pilot(key)
    if key_id == key.id:
        raise Problem(409, "a key may not revoke itself: revoke it with another admin key "
                      "or `citypilot apikey revoke`")
    if not catalog.revoke(key_id):
        raise Problem(404, f"no active key {key_id!r}")
    return Response(status_code=204)
