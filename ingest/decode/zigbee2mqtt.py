"""Zigbee2MQTT device state messages and availability.

Topics below the base topic (`zigbee2mqtt` by default; taken from the source's topic filter):
- `{base}/{friendly name}`: the device's state as one JSON object (`temperature`, `humidity`,
  `battery` in %, `voltage` in mV, `linkquality`, ...). The friendly name may itself contain
  `/` (`kitchen/sensor`), so it is everything between the base and the end of the topic; it is
  sanitised to the topic grammar (`kitchen_sensor`) and never used unescaped.
- `{base}/{friendly name}/availability`: `online`/`offline`, either as plain text (legacy) or
  as `{"state": "online"}`: stored as device_status `state`.
- `{base}/bridge/...` (bridge state, info, devices, logging, events, responses) and
  `.../set`, `.../get` (commands to devices): no readings, skipped and counted.

Zigbee2MQTT puts no clock in a device message, so points carry the collector's receive time
(time_source "received") — unless the optional `last_seen` attribute is enabled, which is
Zigbee2MQTT's own time of hearing the device (time_source "network"). Only top-level numbers
and booleans are readings; strings (`action`, `state: "ON"`) and objects (`update`, `color`)
are not stored.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from ingest.decode import Limits
from ingest.decode.adapter import (
    Adapter,
    AdapterConfig,
    Reading,
    load_object,
    received,
    reject,
)
from ingest.decode.fields import DEFAULT_FIELDS, FieldRule, Offered, TimeSource
from ingest.model import Decoded, Reason, TimestampError, to_ns

log = logging.getLogger(__name__)

DEFAULT_BASE = "zigbee2mqtt"
_STATES = ("online", "offline")


def base_topic(topic_filter: str) -> str | None:
    """`zigbee2mqtt/#` -> `zigbee2mqtt`; None when the filter starts with a wildcard."""
    levels: list[str] = []
    for level in topic_filter.split("/"):
        if level in ("+", "#") or level.startswith("$share"):
            break
        levels.append(level)
    return "/".join(levels) or None


class Zigbee2MqttDecoder(Adapter):
    # Zigbee2MQTT's own units where they differ from the registry's (battery voltage in mV,
    # a meter's cumulative energy in kWh).
    defaults: ClassVar[Mapping[str, FieldRule]] = {
        **DEFAULT_FIELDS,
        "voltage": FieldRule("voltage", "mV"),
        "energy": FieldRule("energy_total", "kWh"),
    }

    def __init__(self, config: AdapterConfig, limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        self.base = base_topic(config.topic_filter) or DEFAULT_BASE

    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        name = self._name(topic)
        if not name:
            reject(out, Reason.BAD_TOPIC, f"topic {topic!r} names no device below "
                   f"{self.base!r}", payload)
            return
        levels = name.split("/")
        if levels[0] == "bridge" or "set" in levels[1:] or "get" in levels[1:]:
            return  # skipped: the bridge's own messages, commands to devices
        if levels[-1] == "availability" and len(levels) > 1:
            self._availability(out, name.rsplit("/", 1)[0], payload, received_ns)
            return
        doc = load_object(out, payload, "a Zigbee2MQTT device state")
        if doc is None:
            return
        reading = _timed(name, doc.pop("last_seen", None), received_ns)
        reading.raw = payload
        for key, value in doc.items():
            if isinstance(value, dict | list):
                self.drop(key)
                continue
            reading.values.append(Offered.plain(key, value))
        self.emit(out, reading, received_ns)

    def _name(self, topic: str) -> str:
        if topic.startswith(self.base + "/"):
            return topic[len(self.base) + 1:]
        # A topic outside the configured base (a second Zigbee2MQTT instance on the same
        # filter): its first level is that instance's base.
        return topic.split("/", 1)[1] if "/" in topic else ""

    def _availability(self, out: Decoded, name: str, payload: bytes, received_ns: int) -> None:
        state = _availability_state(payload)
        if state is None:
            reject(out, Reason.BAD_SHAPE, "availability is neither online/offline nor "
                   '{"state": "online"|"offline"}', payload)
            return
        reading = received(name, received_ns)
        reading.raw = payload
        reading.status = {"state": state}
        self.emit(out, reading, received_ns)


def _availability_state(payload: bytes) -> str | None:
    text = payload.strip().decode("utf-8", errors="replace").lower()
    if text in _STATES:  # legacy_availability_payload: plain text
        return text
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    state = doc.get("state") if isinstance(doc, dict) else doc
    return state if isinstance(state, str) and state in _STATES else None


def _timed(name: str, last_seen: Any, received_ns: int) -> Reading:
    """Zigbee2MQTT's `last_seen` (ISO 8601 with zone, or epoch ms) when enabled."""
    if isinstance(last_seen, str | int | float) and not isinstance(last_seen, bool):
        try:
            return Reading(name, to_ns(last_seen, received_ns), TimeSource.NETWORK)
        except (TimestampError, OverflowError, ValueError):
            pass  # unusable: fall back to the receive time rather than lose the reading
    return received(name, received_ns)
