"""`[[sources]]`: gateways that speak another format than citypilot's own, and their decoders.

One entry of the config file's `[[sources]]` array is a `Source`: its `name` becomes the
`gateway` tag of everything it delivers, `pilot` the pilot tag, `format` picks the adapter,
`topic` is the MQTT filter the collector subscribes to (on `mqtt_url`, default: the
collector's own broker). Optional: `timezone` (IANA name; required for Tasmota, whose clock
has no zone), `kinds` (device glob -> kind, first match wins), `fields` (format field ->
canonical metric, optionally with the unit the format delivers it in), `codec` (decodes raw
LoRaWAN bytes when the network server has no decoder) and `device_key` (which identity field,
or for line protocol which tag, names the device). For example:

    [[sources]]
    name = "ttn-eu1"
    format = "ttn-v3"
    topic = "v3/+/devices/+/up"
    pilot = "athens"
    codec = "cayenne-lpp"
    kinds = { "parking-*" = "parking", "*" = "weather" }
    fields = { temp_f = { metric = "temperature", unit = "°F" }, luminosity = "illuminance" }

`load_sources` validates the whole array with one-line errors naming the key
(`sources[1] (z2m).timezone: 'Europe/Atlantis' is not an IANA time zone ...`);
`decoder_for` builds the source's `Decoder` from an explicit dict of format -> class.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest.decode import Decoder, Limits, codecs
from ingest.decode.adapter import Adapter, AdapterConfig
from ingest.decode.chirpstack import DEVICE_KEYS as CHIRPSTACK_DEVICE_KEYS
from ingest.decode.chirpstack import ChirpStackDecoder
from ingest.decode.fields import FieldRule, check_rule
from ingest.decode.lineprotocol import LineProtocolDecoder
from ingest.decode.native import NativeDecoder
from ingest.decode.sparkplug import SparkplugDecoder
from ingest.decode.tasmota import TasmotaDecoder
from ingest.decode.ttn import DEVICE_KEYS as TTN_DEVICE_KEYS
from ingest.decode.ttn import TtnDecoder
from ingest.decode.zigbee2mqtt import Zigbee2MqttDecoder
from ingest.model import RESERVED_KINDS, Ident, Name, one_line, zone

log = logging.getLogger(__name__)



def _not_reserved(kind: str) -> str:
    if kind in RESERVED_KINDS:
        raise ValueError(f"kind {kind!r} is reserved")
    return kind


Kind = Annotated[Name, AfterValidator(_not_reserved)]


class Format(StrEnum):
    CITYPILOT = "citypilot"
    TTN_V3 = "ttn-v3"
    CHIRPSTACK_V4 = "chirpstack-v4"
    ZIGBEE2MQTT = "zigbee2mqtt"
    TASMOTA = "tasmota"
    INFLUX_LP = "influx-lp"
    SPARKPLUG_B = "sparkplug-b"


# The adapters. Sparkplug B is stateful (births, aliases, rebirth requests): one decoder per
# source keeps it, which `decoder_for` gives.
ADAPTERS: dict[Format, type[Adapter]] = {
    Format.TTN_V3: TtnDecoder,
    Format.CHIRPSTACK_V4: ChirpStackDecoder,
    Format.ZIGBEE2MQTT: Zigbee2MqttDecoder,
    Format.TASMOTA: TasmotaDecoder,
    Format.INFLUX_LP: LineProtocolDecoder,
    Format.SPARKPLUG_B: SparkplugDecoder,
}
# Which device_key values a format understands (None: any tag name).
_DEVICE_KEYS: dict[Format, tuple[str, ...] | None] = {
    Format.TTN_V3: TTN_DEVICE_KEYS,
    Format.CHIRPSTACK_V4: CHIRPSTACK_DEVICE_KEYS,
    Format.INFLUX_LP: None,
}
_CODEC_FORMATS = (Format.TTN_V3, Format.CHIRPSTACK_V4)


class SourceConfigError(ValueError):
    """A `[[sources]]` entry that cannot work; the message is one line naming the key."""


class FieldMap(BaseModel):
    """`field = "metric"` or `field = { metric = "temperature", unit = "°F" }`."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    metric: Name
    unit: str | None = None

    @model_validator(mode="after")
    def _convertible(self) -> Self:
        problem = check_rule(FieldRule(self.metric, self.unit))
        if problem:
            raise ValueError(problem)
        return self

    def rule(self) -> FieldRule:
        return FieldRule(self.metric, self.unit)


class Source(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Ident
    format: Format
    topic: str = Field(min_length=1, max_length=1024)
    pilot: Ident
    mqtt_url: str | None = None
    timezone: str | None = None
    kinds: dict[str, Kind] = Field(default_factory=dict)
    fields: dict[str, FieldMap] = Field(default_factory=dict)
    codec: str | None = None
    device_key: str | None = Field(default=None, min_length=1)

    @field_validator("topic")
    @classmethod
    def _topic_filter(cls, value: str) -> str:
        levels = value.split("/")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise ValueError(f"{value!r}: '#' must be the whole last level")
            if "+" in level and level != "+":
                raise ValueError(f"{value!r}: '+' must be a whole level")
        if "\x00" in value:
            raise ValueError("topic filter contains NUL")
        return value

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mqtt://", "mqtts://")):
            raise ValueError(f"{value!r} is not mqtt://host:port or mqtts://host:port")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        if value is not None:
            zone(value)
        return value

    @field_validator("fields", mode="before")
    @classmethod
    def _short_fields(cls, value: Any) -> Any:
        # `field = "metric"` is shorthand for `field = { metric = "metric" }`
        if isinstance(value, dict):
            return {k: {"metric": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("codec")
    @classmethod
    def _codec(cls, value: str | None) -> str | None:
        if value is not None and codecs.get(value) is None:
            raise ValueError(f"unknown codec {value!r} (known: {', '.join(codecs.names())})")
        return value

    @model_validator(mode="after")
    def _per_format(self) -> Self:
        if self.format is Format.TASMOTA and self.timezone is None:
            raise ValueError("timezone: required for format tasmota (its Time has no zone), "
                             "e.g. timezone = \"Europe/Athens\"")
        if self.codec is not None and self.format not in _CODEC_FORMATS:
            raise ValueError(f"codec: only for LoRaWAN formats "
                             f"({', '.join(f.value for f in _CODEC_FORMATS)})")
        if self.device_key is not None:
            if self.format not in _DEVICE_KEYS:
                raise ValueError(f"device_key: format {self.format.value} takes the device "
                                 "from its topic; drop device_key")
            allowed = _DEVICE_KEYS[self.format]
            if allowed is not None and self.device_key not in allowed:
                raise ValueError(f"device_key: {self.device_key!r} is not one of "
                                 f"{', '.join(allowed)}")
        return self


def load_sources(entries: Any) -> list[Source]:
    """Validate the config file's `sources` array; SourceConfigError on the first problem."""
    if not isinstance(entries, list):
        raise SourceConfigError("sources: expected an array of tables ([[sources]])")
    out: list[Source] = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        label = f"sources[{i}]"
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            label += f" ({entry['name']})"
        try:
            source = Source.model_validate(entry)
        except ValidationError as exc:
            raise SourceConfigError(one_line(exc, label, Source.model_fields)) from None
        if source.name in seen:
            raise SourceConfigError(f"{label}.name: {source.name!r} is used by an earlier "
                                    "source; each source is its own gateway")
        seen.add(source.name)
        out.append(source)
    return out


def adapter_config(source: Source) -> AdapterConfig:
    codec = codecs.get(source.codec) if source.codec else None
    return AdapterConfig(
        pilot=source.pilot,
        gateway=source.name,
        kinds=tuple(source.kinds.items()),
        fields={key: rule.rule() for key, rule in source.fields.items()},
        codec=codec,
        codec_name=source.codec,
        timezone=zone(source.timezone) if source.timezone else None,
        device_key=source.device_key,
        topic_filter=source.topic,
    )


def adhoc_source(fmt: str, timezone: str | None = None) -> Source:
    """A throw-away source for `citypilot sources check --format F` without a config file:
    pilot and gateway `check`, every topic, UTC for Tasmota unless a timezone is given."""
    if fmt == Format.TASMOTA and timezone is None:
        timezone = "UTC"
    try:
        return Source.model_validate({"name": "check", "format": fmt, "topic": "#",
                                      "pilot": "check", "timezone": timezone})
    except ValidationError as exc:
        raise SourceConfigError(one_line(exc, "--format/--timezone", Source.model_fields)) from None


def decoder_for(source: Source, limits: Limits | None = None) -> Decoder:
    """The decoder of this source's format, configured with its mappings."""
    limits = limits or Limits()
    if source.format is Format.CITYPILOT:
        return NativeDecoder(limits)
    adapter: Callable[[AdapterConfig, Limits], Adapter] | None = ADAPTERS.get(source.format)
    if adapter is None:
        raise SourceConfigError(f"sources ({source.name}).format: {source.format.value} "
                                "has no decoder in this release")
    return adapter(adapter_config(source), limits)
