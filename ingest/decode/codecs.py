"""Payload codecs: raw LoRaWAN application bytes -> readings, for devices whose network server
has no decoder configured (TTS without a payload formatter, ChirpStack without a device-profile
codec).

A codec is a plain function `(payload: bytes, f_port: int) -> dict` returning a JSON-like
object of readings, exactly like a TTS `decoded_payload` (nested objects allowed; the adapter
maps its names through the same field table), and raising `CodecError` when the bytes are not
in its format. A source names its codec in the config (`codec = "cayenne-lpp"`).

Adding one: write the function in its own module beside this one (see `cayenne.py`), name its
readings as the vendor's own decoder does so that mappings written for the network server's
output keep working, cover it with table-driven tests plus a hypothesis test that arbitrary
bytes give readings or `CodecError`, and add it to `CODECS` below. There is deliberately no
plug-in discovery: the list of codecs a collector can run is this dict.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)


class CodecError(ValueError):
    """The bytes are not a valid payload of this codec's format (the message says where)."""


class Codec(Protocol):
    def __call__(self, payload: bytes, f_port: int) -> dict[str, Any]: ...


def _registry() -> dict[str, Codec]:
    # Imported here so that a codec module may use this module's CodecError without a cycle.
    from ingest.decode import cayenne

    return {"cayenne-lpp": cayenne.decode}


def names() -> list[str]:
    return sorted(_registry())


def get(name: str) -> Codec | None:
    """The codec registered under `name`, or None."""
    return _registry().get(name)
