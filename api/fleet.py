"""The fleet as the API shows it: the registry, plus what reports without being registered.

Collectors never write the catalogue, so pilots, gateways and devices that send data but are
not in the registry are derived here from the store (their newest points), listed with
defaults and flagged `registered: false`. Which pilots exist is asked often (every KPI and
readings request checks it) and changes rarely, so it is remembered for `ttl_s`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from api.catalog import Catalog, Device, Pilot
from ingest.model import DELAY_FIELD, EVENT_MEASUREMENT, RESERVED_KINDS, STATUS_MEASUREMENT
from ingest.stores.base import Reader, Seen, TagFilter


@dataclass(frozen=True, slots=True)
class DeviceView:
    pilot: str
    gateway: str
    id: str
    entry: Device | None  # None: seen in data only
    kinds: tuple[str, ...]  # measurements it sent readings or events in
    services: tuple[str, ...]  # services of the events it sent
    last_seen_ns: int | None
    interval_s: float
    state: str | None = None
    battery: float | None = None

    def online(self, now_ns: int) -> bool:
        """Seen within twice its expected reporting interval."""
        return self.last_seen_ns is not None and \
            now_ns - self.last_seen_ns <= 2 * self.interval_s * 1e9


class Fleet:
    def __init__(self, store: Reader, catalog: Catalog, *, default_interval_s: float = 300.0,
                 ttl_s: float = 30.0) -> None:
        self.store, self.catalog = store, catalog
        self.default_interval_s, self._ttl_s = default_interval_s, ttl_s
        self._seen_pilots: tuple[float, set[str]] | None = None

    async def data_measurements(self) -> list[str]:
        return [m for m in await self.store.measurements() if m not in RESERVED_KINDS] + [
            EVENT_MEASUREMENT]

    async def seen(self, pilots: list[str] | None = None) -> list[Seen]:
        """When each device was last seen, per measurement and (for events) service."""
        where: TagFilter = (("pilot", tuple(pilots)),) if pilots is not None else ()
        return await self.store.last_seen(await self.data_measurements(), DELAY_FIELD,
                                          where=where, by=("service",))

    async def seen_pilots(self) -> set[str]:
        cached = self._seen_pilots
        if cached is not None and time.monotonic() - cached[0] < self._ttl_s:
            return cached[1]
        pilots = {s.pilot for s in await self.seen() if s.pilot}
        self._seen_pilots = (time.monotonic(), pilots)
        return pilots

    async def pilot(self, pilot_id: str) -> Pilot | None:
        """The registry entry, a default entry for a pilot seen only in data, or None."""
        entry = self.catalog.pilot(pilot_id)
        if entry is not None:
            return entry
        return Pilot(id=pilot_id) if pilot_id in await self.seen_pilots() else None

    async def pilots(self) -> list[tuple[Pilot, bool]]:
        """Every pilot and whether it is registered."""
        registered = {p.id: p for p in self.catalog.pilots()}
        derived = {p: Pilot(id=p) for p in await self.seen_pilots() if p not in registered}
        both = [(p, True) for p in registered.values()] + [(p, False) for p in derived.values()]
        return sorted(both, key=lambda x: x[0].id)

    async def devices(self, pilots: list[str] | None) -> list[DeviceView]:
        """Registered and seen devices of these pilots (all when None)."""
        entries = [p for p in self.catalog.pilots() if pilots is None or p.id in pilots]
        seen = await self.seen(pilots)
        status = {(p.tag("pilot"), p.tag("gateway"), p.tag("device")): p
                  for p in await self.store.latest(STATUS_MEASUREMENT)}
        last: dict[tuple[str, str, str], int] = {}
        kinds: dict[tuple[str, str, str], dict[str, None]] = {}  # ordered sets
        services: dict[tuple[str, str, str], dict[str, None]] = {}
        for s in seen:
            key = (s.pilot, s.gateway, s.device)
            last[key] = max(last.get(key, 0), s.ts)
            kinds.setdefault(key, {})[s.measurement] = None
            if s.measurement == EVENT_MEASUREMENT and s.tag("service"):
                services.setdefault(key, {})[s.tag("service")] = None
        registered = {(p.id, d.gateway, d.id): d for p in entries for d in p.devices}
        out: list[DeviceView] = []
        for key in sorted(set(registered) | set(last)):
            entry = registered.get(key)
            state = status.get(key)
            battery = state.fields.get("battery") if state else None
            out.append(DeviceView(
                *key, entry, tuple(kinds.get(key, ())), tuple(services.get(key, ())),
                last.get(key),
                entry.interval_s if entry and entry.interval_s else self.default_interval_s,
                str(state.fields["state"]) if state and "state" in state.fields else None,
                battery if isinstance(battery, float) else None))
        return out
