"""The topic grammar: the one place that knows `citypilot/v1/{pilot}/{gateway}/{device}/{channel}`.

The topic is authoritative for identity: the broker's ACL confines a gateway to its own
`{pilot}/{gateway}/`, so nothing in a payload may override pilot, gateway or device.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "citypilot/v1"
ID_PATTERN = r"[A-Za-z0-9_-]{1,64}"
_ID = re.compile(ID_PATTERN)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


class Channel(StrEnum):
    TELEMETRY = "telemetry"
    EVENT = "event"
    STATUS = "status"


@dataclass(frozen=True, slots=True)
class Identity:
    pilot: str
    gateway: str
    device: str


class TopicError(ValueError):
    """The topic does not follow the grammar; the message says why."""

    def __init__(self, message: str, *, unknown_channel: bool = False) -> None:
        super().__init__(message)
        self.unknown_channel = unknown_channel


def is_id(value: str) -> bool:
    return _ID.fullmatch(value) is not None


@functools.lru_cache(maxsize=1 << 16)  # a fleet's topics repeat; refusals are not cached
def parse(topic: str) -> tuple[Identity, Channel]:
    """Split a native topic into identity and channel, or raise TopicError naming the fault."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise TopicError(f"topic {topic!r} is not "
                         f"{PREFIX}/{{pilot}}/{{gateway}}/{{device}}/{{channel}}")
    _, _, pilot, gateway, device, channel = parts
    for label, value in (("pilot", pilot), ("gateway", gateway), ("device", device)):
        if not is_id(value):
            raise TopicError(f"{label} {value!r} does not match {ID_PATTERN}")
    try:
        chan = Channel(channel)
    except ValueError:
        raise TopicError(
            f"channel {channel!r} is not one of {', '.join(c.value for c in Channel)}",
            unknown_channel=True,
        ) from None
    return Identity(pilot, gateway, device), chan


def build(identity: Identity, channel: Channel) -> str:
    return f"{PREFIX}/{identity.pilot}/{identity.gateway}/{identity.device}/{channel.value}"


def subscription(share_group: str | None = None) -> str:
    """The collector's filter for all native traffic, shared when a group is given."""
    base = f"{PREFIX}/+/+/+/+"
    return f"$share/{share_group}/{base}" if share_group else base


def sanitise(value: str, fallback: str = "unknown") -> str:
    """Map a foreign identity (a Zigbee friendly name, a LoRaWAN device id) onto the grammar."""
    cleaned = _UNSAFE.sub("_", value).strip("_")[:64]
    return cleaned or fallback
