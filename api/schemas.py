"""The JSON shapes the API answers with (and takes), as pydantic models.

They are the API's public contract and generate its OpenAPI document. Times are RFC 3339
strings with an offset (a pilot's local offset for KPI periods, UTC elsewhere); durations
are float seconds. Registry documents reuse the catalogue's own models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.catalog import Role
from api.jsontypes import Instant
from ingest.model import IDENT_PATTERN, Ident


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Me(_Out):
    key_id: str
    name: str
    role: Role
    pilots: list[str] | None = Field(description="the pilots this key may read; null: all")
    expires: datetime | None


class GatewayOut(_Out):
    id: str
    registered: bool


class PilotOut(_Out):
    id: str
    name: str | None
    population: int | None
    timezone: str
    registered: bool = Field(description="false: seen in data only, listed with defaults")
    gateways: list[GatewayOut]
    devices: int


class DeviceOut(_Out):
    pilot: str
    gateway: str
    id: str
    registered: bool
    kind: str | None = Field(description="registered telemetry kind, else the first seen")
    kinds_seen: list[str] = Field(description="measurements it sent data in (`event` too)")
    service: str | None = Field(description="registered service, else the first service "
                                "its events name")
    location: str | None
    lat: float | None
    lon: float | None
    interval_s: float = Field(description="expected reporting interval (a default when "
                              "not registered)")
    capacity: float | None
    last_seen: datetime | None
    online: bool = Field(description="seen within twice its reporting interval")
    state: str | None = Field(description="last reported status: online/offline")
    battery: float | None


class ReadingPoint(_Out):
    time: datetime = Field(description="bucket start")
    value: float


class ReadingSeries(_Out):
    gateway: str | None
    device: str | None
    points: list[ReadingPoint]


class Readings(_Out):
    pilot: str
    kind: str
    metric: str
    agg: str
    every_s: float
    downsampled: bool = Field(description="true when `every` was chosen (or raised) to keep "
                              "the answer within the point limit")
    start: datetime
    end: datetime
    series: list[ReadingSeries]


class KpiLimit(_Out):
    regime: str = Field(description="the law or guideline, e.g. Directive (EU) 2024/2881")
    value: float
    unit: str = Field(description="the metric's unit, e.g. µg/m³")
    averaging: str = Field(description="hour, day, calendar year or year")
    allowed: int | None = Field(None, description="exceedances allowed per calendar year")


class KpiDefinition(_Out):
    id: str
    title: str
    family: str
    unit: str
    formula: str
    grain: str
    reference: str
    dimensions: list[str]
    limits: list[KpiLimit] = Field(default_factory=list,
                                   description="the limit values the KPI is judged against")


class KpiPoint(_Out):
    start: str = Field(description="period start, RFC 3339 in the pilot's timezone")
    end: str
    value: float | None
    reason: str | None = Field(None, description="why the value is null")
    service: str | None = None
    kind: str | None = None
    gateway: str | None = None
    device: str | None = None
    indicator: str | None = Field(None, description="the exceedance KPI an allowance is of")
    regime: str | None = Field(None, description="the law or guideline of a limit value")
    context: dict[str, float] = Field(default_factory=dict,
                                      description="what the value covers, e.g. sensors")


class KpiValues(_Out):
    id: str
    title: str
    unit: str
    grain: str
    pilot: str
    timezone: str
    source: Literal["rollup", "raw"] = Field(
        "raw", description="`rollup` when hourly rollups answered the whole KPI (the hour "
        "in progress is always read raw), `raw` when it read raw points")
    values: list[KpiPoint]


class DeadLetterOut(_Out):
    time: datetime
    reason: str
    topic: str
    payload: str = Field(description="the payload as received (size-capped): its text, or "
                         "base64 of its bytes when `payload_encoding` is `base64` (not UTF-8)")
    detail: str
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"


class KeyOut(_Out):
    id: str
    name: str
    role: Role
    pilots: list[str] | None
    created: datetime
    expires: datetime | None
    state: str


class KeyCreated(KeyOut):
    key: str = Field(description="the key itself: shown this once, store it safely")


class KeyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Role
    pilots: list[Ident] | None = Field(None, min_length=1, max_length=100,
                                       description="limit to these pilots")
    expires: Instant | None = Field(None, description="RFC 3339 with an offset")


class Loaded(_Out):
    pilots: list[str]


class Health(_Out):
    status: str
    checks: dict[str, str] = Field(default_factory=dict)


PILOT_PATTERN = IDENT_PATTERN
