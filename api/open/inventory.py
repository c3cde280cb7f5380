"""The infrastructure inventory: every device the caller may see, with what is known of it.

One list serves the OGC API – Features collections (`ogc.py`) and the tender annex
(`/api/v1/exports/inventory`, `citypilot inventory export`). A device comes from the registry
(kind, service, coordinates, gateway, operator, network, make, installation day) and from the
store (the kinds it reported in, their metrics, when it was last seen); a device seen only in
data appears with what the data tells. Availability and data completeness over the last 30
days are the KPIs' own values for that device alone (`api.kpis.service.per_device`),
remembered for `ttl_s` (they move slowly, and cost a few store queries per device).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from api.catalog import Pilot
from api.fleet import DeviceView, Fleet
from api.kpis.context import DeviceKey
from api.kpis.periods import NS
from api.kpis.service import per_device
from api.open.access import Scope
from api.options import KpiOptions
from ingest.model import DELAY_FIELD, RESERVED_KINDS
from ingest.units import lookup

UPTIME_DAYS = 30
UPTIME_KPIS = ("availability", "data_completeness")
DEVICES_PATH = "/ogc/collections/devices/items"  # under the public URL: persistent ids


@dataclass(frozen=True, slots=True)
class MetricInfo:
    name: str
    unit: str | None  # None: a metric the unit registry does not know
    description: str | None


@dataclass(frozen=True, slots=True)
class Item:
    """One device of the inventory."""

    pilot: str
    gateway: str
    device: str
    registered: bool
    kind: str | None
    service: str | None
    metrics: tuple[MetricInfo, ...]
    lat: float | None
    lon: float | None
    location: str | None
    operator: str | None
    network: str | None
    manufacturer: str | None
    model: str | None
    installed: date | None
    interval_s: float
    last_seen_ns: int | None
    kinds: tuple[str, ...] = ()  # every kind it shows, `kind` first
    availability: float | None = None  # %, last 30 days (`with_uptime`)
    completeness: float | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return self.pilot, self.gateway, self.device

    @property
    def feature_id(self) -> str:
        """`pilot.gateway.device`: ids follow the topic grammar, which has no dot."""
        return ".".join(self.key)

    def uri(self, public_url: str) -> str:
        """The persistent id: its OGC API feature, under the public base URL."""
        return f"{public_url}{DEVICES_PATH}/{self.feature_id}"


def _metrics(names: Sequence[str]) -> tuple[MetricInfo, ...]:
    out = []
    for name in sorted(set(names) - {DELAY_FIELD}):
        metric = lookup(name)
        out.append(MetricInfo(name, metric.unit if metric else None,
                              metric.description if metric else None))
    return tuple(out)


def _item(view: DeviceView, fields: dict[str, list[str]], kinds: Sequence[str]) -> Item:
    """`kinds`: the ones it may show, the registered one first."""
    e = view.entry
    return Item(
        view.pilot, view.gateway, view.id, e is not None,
        kinds[0] if kinds else None, e.service if e else None,
        _metrics([f for k in kinds for f in fields.get(k, [])]),
        e.lat if e else None, e.lon if e else None, e.location if e else None,
        e.operator if e else None, e.network if e else None, e.manufacturer if e else None,
        e.model if e else None, e.installed if e else None, view.interval_s,
        view.last_seen_ns, tuple(kinds))


async def items(fleet: Fleet, scope: Scope, pilots: list[str]) -> list[Item]:
    """The devices of these pilots that the scope shows, and only their shown kinds."""
    fields = await fleet.store.fields()
    out: list[Item] = []
    for view in await fleet.devices(pilots):
        registered_kind = view.entry.kind if view.entry else None
        seen = [k for k in view.kinds if k != registered_kind and k not in RESERVED_KINDS]
        kinds = [k for k in ([registered_kind] if registered_kind else []) + seen
                 if scope.shows(view.pilot, k)]
        if not kinds and scope.kinds[view.pilot] is not None:
            continue  # without a key: only devices of public kinds
        out.append(_item(view, fields, kinds))
    return out


class Uptime:
    """Availability and completeness per device over the last 30 days, remembered."""

    def __init__(self, fleet: Fleet, options: KpiOptions, ttl_s: float = 300.0) -> None:
        self.fleet, self.options, self.ttl_s = fleet, options, ttl_s
        self._known: dict[tuple[str, str, str], tuple[float, float | None, float | None]] = {}
        self._lock = asyncio.Lock()

    async def add(self, found: Sequence[Item], now_ns: int | None = None) -> list[Item]:
        now = time.time_ns() if now_ns is None else now_ns
        fresh = time.monotonic() - self.ttl_s
        missing: dict[str, list[DeviceKey]] = {}
        async with self._lock:
            for item in found:
                known = self._known.get(item.key)
                if known is None or known[0] < fresh:
                    missing.setdefault(item.pilot, []).append((item.gateway, item.device))
            for pilot_id, keys in missing.items():
                pilot = await self.fleet.pilot(pilot_id) or Pilot(id=pilot_id)
                values = await per_device(self.fleet.store, pilot, UPTIME_KPIS, keys,
                                          now - UPTIME_DAYS * 86400 * NS, now,
                                          options=self.options, now_ns=now)
                for (gateway, device), got in values.items():
                    self._known[(pilot_id, gateway, device)] = (
                        time.monotonic(), got["availability"].value,
                        got["data_completeness"].value)
        return [replace(item, availability=self._known[item.key][1],
                        completeness=self._known[item.key][2]) for item in found]


async def pilot_inventory(fleet: Fleet, uptime: Uptime, pilot: Pilot) -> list[Item]:
    """Every device of the pilot, all kinds (the tender annex: a viewer key's view)."""
    scope = Scope({pilot.id: pilot}, {pilot.id: None}, keyed=True)
    return await uptime.add(await items(fleet, scope, [pilot.id]))
