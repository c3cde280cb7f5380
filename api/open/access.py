"""Who may read what on the open routes, and how often.

Without a key, an open route answers only for pilots whose registry entry says
`open_data = true`, and shows only their `open_kinds`; when no pilot is open it is a 401, as
every `/api/v1` route. With a viewer key it answers for every pilot the key may read, all
their kinds (the key's holder reads the same through `/api/v1`). No open route ever shows
user ids, events, dead letters or credentials: the answers are built from the registry and
telemetry only.

Requests are limited per client address (`open_rate_limit`, e.g. `120/minute`; `api.guard`);
beyond it the answer is a 429 with `Retry-After`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import bearer, key_of
from api.catalog import Pilot
from api.fleet import Fleet
from api.guard import RateLimit, client_address
from api.problems import Problem, unauthorized


@dataclass(frozen=True, slots=True)
class Scope:
    """The pilots an open request may read and, per pilot, its public kinds (None: all)."""

    pilots: dict[str, Pilot]
    kinds: dict[str, frozenset[str] | None]
    keyed: bool

    def shows(self, pilot: str, kind: str | None) -> bool:
        """Whether a device, series or dataset of this kind of this pilot may be shown."""
        if pilot not in self.pilots:
            return False
        allowed = self.kinds[pilot]
        return allowed is None or (kind is not None and kind in allowed)

    def key(self) -> tuple[object, ...]:
        """What an answer built for this scope depends on (for `api.open.fresh`)."""
        return (tuple(sorted(self.pilots)), tuple(sorted(
            (p, tuple(sorted(k)) if k is not None else None) for p, k in self.kinds.items())))

    def only(self, pilot: str | None) -> list[str]:
        """The pilots asked for (one, or all readable); a pilot not readable is a 401/404."""
        if pilot is None:
            return sorted(self.pilots)
        if pilot not in self.pilots:
            if self.keyed:
                raise Problem(404, f"no pilot {pilot!r} this key may read")
            raise unauthorized(f"pilot {pilot!r} publishes no open data: send a viewer key "
                               "(`Authorization: Bearer <key>`)")
        return [pilot]


async def scope(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Scope:
    """The caller's scope; 401 without a key when no pilot is open."""
    fleet: Fleet = request.app.state.fleet
    if credentials is not None:
        key = await key_of(request, credentials)
        pilots = {p.id: p for p, _ in await fleet.pilots() if key.may_read(p.id)}
        return Scope(pilots, dict.fromkeys(pilots), keyed=True)
    opened = {p.id: p for p in fleet.catalog.pilots() if p.published.open_data}
    if not opened:
        raise unauthorized("no pilot publishes open data: this route needs a viewer key "
                           "(`Authorization: Bearer <key>`)")
    return Scope(opened, {p: frozenset(x.published.open_kinds) for p, x in opened.items()},
                 keyed=False)


async def limited(request: Request) -> None:
    """The rate limit, as a dependency of every open router."""
    limit: RateLimit = request.app.state.open_limit
    limit.check(client_address(request))


OpenScope = Annotated[Scope, Depends(scope)]
