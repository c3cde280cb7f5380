"""`GET /api/v1/doctor`: `citypilot doctor`'s findings, for an admin key of every pilot (the
findings name every pilot's gateways, the broker and the store).

The checks are the command's (`api.doctor`), over the options the API was started with; the
API refuses shipped secrets at start, so here that check reports the catalogue's demo key.
The broker probe runs on every call (a few thousand tiny messages on a private topic).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict

from api.auth import Admin
from api.deps import CatalogDep
from api.doctor.checks import Finding, Level, exit_code
from api.doctor.facts import examine
from api.problems import Problem, errors

router = APIRouter(prefix="/api/v1", responses=errors(401, 403))
_WORST = {0: Level.OK, 1: Level.WARNING, 2: Level.ERROR}


class Checkup(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    level: Level  # the worst finding's (ok and info count as ok), as the command's exit code
    findings: list[Finding]


@router.get("/doctor", response_model=Checkup, tags=["doctor"])
async def doctor(key: Admin, catalog: CatalogDep, request: Request) -> Checkup:
    """The pre-flight check: broker queue limit and persistence, InfluxDB's version and
    limits, the spool's disk, clock skew, certificate expiry, shipped secrets, rollup lag;
    one finding per line, each with its fix."""
    if key.pilots is not None:
        raise Problem(403, "the doctor's findings cover every pilot: they need an admin key "
                      "for every pilot")
    findings = await examine(request.app.state.options, catalog)
    return Checkup(level=_WORST[exit_code(findings)], findings=findings)
