"""The pilot registry: the facts about pilots that readings do not carry.

A pilot's population and timezone, each device's kind, location, expected reporting interval,
capacity and installation date, each service's capacity: KPIs need them. Who operates a
device, on which network, of which make, and what of a pilot the open interfaces publish
(`[pilots.open]`: nothing unless `open_data = true`): the inventory and open data need them.
One pydantic model serves the file format (TOML or YAML), the API and the catalogue's table.
Ids follow the topic grammar.
"""

from __future__ import annotations

import tomllib
from datetime import date
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest import topics
from ingest.model import NAME_PATTERN, RESERVED_KINDS, zone
from ingest.validation import one_line

IDENT_PATTERN = f"^{topics.ID_PATTERN}$"  # the topic grammar's pilot, gateway, device
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=200)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")]
# The fewest distinct users a published usage cell may have: below it a cell is suppressed.
MIN_USERS_FLOOR = 5


class CatalogError(Exception):
    """The catalogue cannot be opened or read: a one-line, user-fixable message."""


class RegistryError(CatalogError):
    """A registry document is invalid; the message names the offending entry."""


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Gateway(_Entry):
    id: Ident
    name: Text | None = None
    location: Text | None = None


class Device(_Entry):
    id: Ident
    gateway: Ident
    kind: Name | None = Field(default=None, description="the telemetry kind it reports")
    service: Name | None = Field(default=None, description="the service it counts uses of")
    location: Text | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    interval_s: float | None = Field(default=None, gt=0, le=7 * 86400,
                                     description="expected reporting interval")
    capacity: float | None = Field(default=None, ge=0,
                                   description="bays, connectors, luminaires...")
    installed: date | None = Field(
        default=None, description="the local day it was installed: availability and "
        "completeness count it from then (without one, from its first reading)")
    operator: Text | None = Field(default=None, description="who runs it (company or "
                                  "department)")
    network: Text | None = Field(default=None, description="how it reaches its gateway: "
                                 "LoRaWAN, NB-IoT, Wi-Fi, Zigbee, wired...")
    manufacturer: Text | None = None
    model: Text | None = None


class Service(_Entry):
    id: Name
    name: Text | None = None
    capacity: float | None = Field(default=None, gt=0,
                                   description="simultaneous users it can serve")


class OpenData(_Entry):
    """What the open interfaces publish of a pilot: nothing unless `open_data` is true."""

    open_data: bool = Field(default=False, description="publish this pilot without a key")
    open_kinds: tuple[Name, ...] = Field(default=(), description="the telemetry kinds that "
                                         "are public (none other is ever shown)")
    open_min_users: int = Field(default=10, description="a usage cell is published only "
                                f"with at least this many distinct users (>= {MIN_USERS_FLOOR})")
    licence: Text = Field(default="CC-BY-4.0", description="SPDX id or URL of the licence")
    contact_name: Text | None = None
    contact_email: Email | None = None

    @field_validator("open_min_users")
    @classmethod
    def _floor(cls, v: int) -> int:
        if v < MIN_USERS_FLOOR:
            raise ValueError(f"open_min_users is {v}: it must be at least {MIN_USERS_FLOOR} "
                             "(smaller usage counts could identify citizens)")
        return v

    @field_validator("open_kinds")
    @classmethod
    def _telemetry(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        reserved = sorted(set(v) & RESERVED_KINDS)
        if reserved:
            raise ValueError(f"open_kinds lists {reserved[0]!r}: only telemetry kinds can be "
                             "public (events and device status never are)")
        return v


class Pilot(_Entry):
    id: Ident
    name: Text | None = None
    population: int | None = Field(default=None, ge=0, description="target population")
    timezone: str = Field(default="UTC",
                          description="IANA zone: periods start at local midnight")
    lighting_baseline_kwh_per_day: float | None = Field(
        default=None, gt=0, description="street lighting energy per day before the pilot")
    gateways: tuple[Gateway, ...] = ()
    devices: tuple[Device, ...] = ()
    services: tuple[Service, ...] = ()
    # -- open data (issue 13): keep these together ---------------------------------------
    open: OpenData | None = Field(default=None, description="what the open interfaces "
                                  "publish; absent: nothing")

    @property
    def published(self) -> OpenData:
        """The open-data table, its defaults when absent (`open_data` false)."""
        return self.open or OpenData()
    # -- end of open data -------------------------------------------------------------------

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        zone(v)  # the one time-zone check, shared with the sources file
        return v

    @model_validator(mode="after")
    def _unique(self) -> Pilot:
        for what, items in (("gateway", self.gateways), ("device", self.devices),
                            ("service", self.services)):
            ids = [(getattr(x, "gateway", ""), x.id) for x in items]
            if len(ids) != len(set(ids)):
                raise ValueError(f"pilot {self.id}: a {what} id is listed twice")
        return self

    def with_gateways(self) -> Pilot:
        """The pilot with a gateway entry for every gateway its devices name."""
        known = {g.id for g in self.gateways}
        extra = sorted({d.gateway for d in self.devices} - known)
        return self.model_copy(update={"gateways": self.gateways + tuple(
            Gateway(id=g) for g in extra)}) if extra else self


class Registry(_Entry):
    pilots: tuple[Pilot, ...] = ()


def parse_registry(text: str, suffix: str) -> Registry:
    """A registry from TOML (`[[pilots]]`) or YAML (`pilots:`), by file suffix."""
    try:
        if suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"not valid {suffix.lstrip('.').upper() or 'TOML'}: "
                            f"{str(exc).splitlines()[0]}") from None
    try:
        return Registry.model_validate(data or {})
    except ValidationError as exc:
        raise RegistryError(one_line(exc)) from None


