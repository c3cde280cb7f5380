"""API keys on every `/api/v1/*` route: `Authorization: Bearer <key>`, a role, maybe pilots.

No key, an unknown, revoked or expired key: 401 with `WWW-Authenticate: Bearer`; after
`auth_failure_limit` unknown keys from one client address, a 429 with `Retry-After` instead,
before the key is checked (`api.guard`). A valid key
without the role, or asking for a pilot it is not limited to: 403. Roles nest: `viewer`
(city staff: pilots, KPIs, exports) < `operator` (plus devices, readings, dead letters) <
`admin` (plus keys and the registry). Keys are checked against the catalogue on every
request, so a key created or revoked while the API runs counts at once; the check runs on a
worker thread because the first check of a key is a deliberately slow scrypt hash.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.catalog import ApiKey, Catalog, KeyState, Role
from api.guard import RateLimit, client_address
from api.problems import Problem, unauthorized

bearer = HTTPBearer(auto_error=False, scheme_name="apiKey",
                    description="an API key from `citypilot apikey create`")
_ROLE_NEEDS = {Role.VIEWER: "pilots, KPIs and exports", Role.OPERATOR: "devices, readings, "
               "dead letters and the API's metrics", Role.ADMIN: "keys and the registry"}


async def key_of(request: Request, credentials: HTTPAuthorizationCredentials | None
                 ) -> ApiKey:
    """The active key presented, or the 401 problem."""
    if credentials is None or not credentials.credentials:
        raise unauthorized("this route needs an API key: send `Authorization: Bearer "
                           "<key>` (an admin creates one with `citypilot apikey create`)")
    catalog: Catalog = request.app.state.catalog
    failures: RateLimit = request.app.state.auth_limit
    client = client_address(request)
    failures.refuse_when_spent(client)
    key = await run_in_threadpool(catalog.verify, credentials.credentials)
    if key is None:
        failures.count(client)
        raise unauthorized("unknown API key: check it was copied whole, or ask an admin "
                           "for a new one")
    state = key.state(time.time_ns())
    if state is not KeyState.ACTIVE:
        raise unauthorized(f"this API key is {state.value}: ask an admin for a new one")
    return key


def require(role: Role) -> Callable[..., Awaitable[ApiKey]]:
    """A dependency answering the caller's key record, or raising the 401/403 problem."""

    async def check(request: Request, credentials: Annotated[
            HTTPAuthorizationCredentials | None, Depends(bearer)]) -> ApiKey:
        key = await key_of(request, credentials)
        if not key.role.allows(role):
            raise Problem(403, f"a {key.role.value} key may not read {_ROLE_NEEDS[role]}: "
                          f"this needs an {role.value} key" if role is not Role.VIEWER
                          else "forbidden")
        return key

    return check


Viewer = Annotated[ApiKey, Depends(require(Role.VIEWER))]
Operator = Annotated[ApiKey, Depends(require(Role.OPERATOR))]
Admin = Annotated[ApiKey, Depends(require(Role.ADMIN))]


def check_pilot(key: ApiKey, pilot: str) -> None:
    """403 unless the key may read this pilot's data."""
    if not key.may_read(pilot):
        raise Problem(403, f"this key is limited to pilot(s) {', '.join(sorted(key.pilots or ()))}"
                      f" and may not read {pilot!r}")


def visible(key: ApiKey, pilots: Iterable[str]) -> list[str]:
    """The pilots among `pilots` the key may read."""
    return sorted(p for p in pilots if key.may_read(p))
