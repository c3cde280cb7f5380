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
from enum import StrEnum
from typing import Annotated

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from api.jsontypes import Count, Day, Flag, Number
from api.kpis.definitions import BY_ID
from ingest.model import RESERVED_KINDS, Ident, Name, one_line, zone

Text = Annotated[str, StringConstraints(max_length=200)]
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$")]
# The fewest distinct users a published usage cell may have: below it a cell is suppressed.
MIN_USERS_FLOOR = 5
# Bounds of the registry's numbers, generous beyond any pilot: every number a client may send
# has both (the API's fuzzing found what an unbounded one does: `tests/api/test_bounds.py`).
MAX_PEOPLE = 100_000_000  # a population, participants, distinct users
MAX_CAPACITY = 1_000_000.0  # bays, connectors, luminaires, simultaneous users
MAX_FIGURE = 1e12  # a KPI target or baseline, an energy figure


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
    lat: Number | None = Field(default=None, ge=-90, le=90)
    lon: Number | None = Field(default=None, ge=-180, le=180)
    interval_s: Number | None = Field(default=None, ge=0.001, le=7 * 86400,
                                     description="expected reporting interval")
    capacity: Number | None = Field(default=None, ge=0, le=MAX_CAPACITY,
                                   description="bays, connectors, luminaires...")
    installed: Day | None = Field(
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
    capacity: Number | None = Field(default=None, ge=1, le=MAX_CAPACITY,
                                   description="simultaneous users it can serve")


# -- evaluation: targets, baselines, uptake and activities (the evaluation report's facts) --

LANGUAGES = ("en", "it", "es", "fr", "el", "pt", "hr", "sl")  # the pilots' countries
# Checked by `Pilot._language` (its message lists them), documented as the enum it is.
Language = Annotated[str, WithJsonSchema({"type": "string", "enum": list(LANGUAGES)})]


class Direction(StrEnum):
    AT_LEAST = "at_least"  # met when the achieved value is at least the target
    AT_MOST = "at_most"  # met when it is at most the target


class Target(_Entry):
    value: Number = Field(ge=-MAX_FIGURE, le=MAX_FIGURE)
    direction: Direction


class Baseline(_Entry):
    value: Number = Field(ge=-MAX_FIGURE, le=MAX_FIGURE)
    source: Text = Field(description="where the figure comes from, e.g. the utility bill")
    date: Day = Field(description="when it was measured or published")


class Uptake(_Entry):
    """An organisation that took up or scaled a solution of the pilot (Interreg RCR 104)."""

    organisation: Text
    solution: Text
    date: Day
    document: Text = Field(description="the document that records it (a reference or URL)")


class ActivityType(StrEnum):
    TRAINING = "training"
    MATCHMAKING = "matchmaking"
    WORKSHOP = "workshop"
    POLICY_DIALOGUE = "policy_dialogue"


class Helix(StrEnum):
    """The quadruple-helix actor an activity is with."""

    BUSINESS = "business"
    ACADEMIA = "academia"
    PUBLIC_AUTHORITY = "public_authority"
    CITIZENS = "citizens"


class Activity(_Entry):
    type: ActivityType
    actor: Helix
    date: Day
    participants: Count = Field(ge=0, le=MAX_PEOPLE)
    title: Text | None = None


def _known_kpis(entries: dict[str, object], what: str) -> None:
    unknown = sorted(set(entries) - set(BY_ID))
    if unknown:
        raise ValueError(f"{what}: unknown KPI {unknown[0]!r} (`citypilot kpi list` has the ids)")


class OpenData(_Entry):
    """What the open interfaces publish of a pilot: nothing unless `open_data` is true."""

    open_data: Flag = Field(default=False, description="publish this pilot without a key")
    open_kinds: tuple[Name, ...] = Field(default=(), description="the telemetry kinds that "
                                         "are public (none other is ever shown)")
    open_min_users: Count = Field(default=10, description="a usage cell is published only "
                                f"with at least this many distinct users (>= {MIN_USERS_FLOOR})",
                                json_schema_extra={"minimum": MIN_USERS_FLOOR,
                                                   "maximum": MAX_PEOPLE})
    licence: Text = Field(default="CC-BY-4.0", description="SPDX id or URL of the licence")
    contact_name: Text | None = None
    contact_email: Email | None = None

    @field_validator("open_min_users")
    @classmethod
    def _floor(cls, v: int) -> int:
        if v < MIN_USERS_FLOOR:
            raise ValueError(f"open_min_users is {v}: it must be at least {MIN_USERS_FLOOR} "
                             "(smaller usage counts could identify citizens)")
        if v > MAX_PEOPLE:
            raise ValueError(f"open_min_users is {v}: it must be at most {MAX_PEOPLE}")
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
    population: Count | None = Field(default=None, ge=0, le=MAX_PEOPLE,
                                   description="target population")
    timezone: str = Field(default="UTC",
                          description="IANA zone: periods start at local midnight")
    lighting_baseline_kwh_per_day: Number | None = Field(
        default=None, ge=0.001, le=MAX_FIGURE,
        description="street lighting energy per day before the pilot")
    gateways: tuple[Gateway, ...] = ()
    devices: tuple[Device, ...] = ()
    services: tuple[Service, ...] = ()
    # -- evaluation (the report): kept together, one block --
    language: Language | None = Field(default=None, description="the report's default "
                                      "language: " + ", ".join(LANGUAGES))
    operator: Text | None = Field(default=None, description="who operates the pilot")
    targets: dict[Name, Target] = Field(default_factory=dict,
                                        description="per KPI id: value and direction")
    baselines: dict[Name, Baseline] = Field(default_factory=dict, description="per KPI id: "
                                            "the value before the pilot, its source and date")
    uptake: tuple[Uptake, ...] = ()
    activities: tuple[Activity, ...] = ()

    @field_validator("language")
    @classmethod
    def _language(cls, v: str | None) -> str | None:
        if v is not None and v not in LANGUAGES:
            raise ValueError(f"language {v!r}: use one of {', '.join(LANGUAGES)}")
        return v

    @field_validator("targets", "baselines")
    @classmethod
    def _kpi_ids(cls, v: dict[str, object], info: ValidationInfo) -> dict[str, object]:
        _known_kpis(v, str(info.field_name))
        return v
    # -- end of evaluation --
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


