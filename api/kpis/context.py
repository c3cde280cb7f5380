"""What a KPI computation sees: the store, the pilot's registry entry, the buckets, now.

Also the one shape every KPI answers with (`KpiValue`: a bucket, a value or null with a
reason, the dimensions) and the helpers that turn store rows into those values, so that the
KPI functions in `pull.py`, `push.py` and `outcomes.py` read as their formulas.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

from api.catalog import Device, Pilot
from api.kpis.periods import Bucket, days
from api.texts import Msg
from ingest.model import RESERVED_KINDS
from ingest.stores.base import Reader, TagFilter, Window

Dims = tuple[tuple[str, str], ...]
DeviceKey = tuple[str, str]  # (gateway, device)


@dataclass(frozen=True, slots=True)
class KpiValue:
    start: int  # ns
    end: int  # ns
    value: float | None
    reason: str | None = None  # why the value is null
    dims: Dims = ()
    extra: tuple[tuple[str, float], ...] = ()  # context, e.g. how many devices it covers


@dataclass
class Context:
    store: Reader
    pilot: Pilot
    tz: ZoneInfo
    buckets: list[Bucket]
    now_ns: int
    default_interval_s: float = 300.0
    _measurements: list[str] | None = field(default=None, repr=False)

    @property
    def where(self) -> TagFilter:
        return (("pilot", (self.pilot.id,)),)

    @property
    def windows(self) -> tuple[Window, ...]:
        return tuple(b.window for b in self.buckets)

    def day_windows(self) -> list[tuple[int, int, int]]:
        """(bucket index, lo, hi) of every local day of every bucket."""
        return [(b.index, lo, hi) for b in self.buckets for _, lo, hi in days(b, self.tz)]

    async def telemetry(self) -> tuple[str, ...]:
        """The telemetry measurements in the store (every kind any pilot reported)."""
        if self._measurements is None:
            self._measurements = await self.store.measurements()
        return tuple(m for m in self._measurements if m not in RESERVED_KINDS)

    @cached_property
    def devices(self) -> dict[DeviceKey, Device]:
        return {(d.gateway, d.id): d for d in self.pilot.devices}

    def interval_s(self, key: DeviceKey) -> float:
        device = self.devices.get(key)
        return device.interval_s if device and device.interval_s else self.default_interval_s

    def services(self, seen: Iterable[str] = ()) -> list[str]:
        """Registered services, services of registered devices, and services seen."""
        names = {s.id for s in self.pilot.services}
        names |= {d.service for d in self.pilot.devices if d.service}
        return sorted(names | {s for s in seen if s})

    def value(self, bucket: Bucket, value: float | None, reason: str | None = None,
              dims: Dims = (), **extra: float) -> KpiValue:
        if value is None and reason is None:
            raise ValueError("a null KPI value needs a reason")
        return KpiValue(bucket.lo, bucket.hi, value, None if value is not None else reason,
                        dims, tuple(sorted(extra.items())))

    def per_dimension(self, key: str, names: list[str], table: Mapping[tuple[int, str], float],
                      *, default: float | None, missing: str, nothing: str) -> list[KpiValue]:
        """One value per bucket and name (`default` where the table has none, null with
        `missing` if that is None); one null per bucket with `nothing` when there are no
        names at all."""
        out: list[KpiValue] = []
        for b in self.buckets:
            if not names:
                out.append(self.value(b, None, nothing))
            for name in names:
                out.append(self.value(b, table.get((b.index, name), default),
                                      Msg(missing, name=name), ((key, name),)))
        return out
