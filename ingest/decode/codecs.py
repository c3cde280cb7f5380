"""Payload codecs: raw LoRaWAN application bytes -> readings, for devices whose network server
has no decoder configured (TTS without a payload formatter, ChirpStack without a device-profile
codec).

A codec is a plain function `(payload: bytes, f_port: int) -> dict` returning a JSON-like
object of readings, exactly like a TTS `decoded_payload` (nested objects allowed; the adapter
maps its names through the same field table), and raising `CodecError` (`codec.py`) when the bytes
are not in its format. A source names its codec in the config (`codec = "cayenne-lpp"`).

Adding one: write the function in its own module beside this one (see `cayenne.py`), name its
readings as the vendor's own decoder does so that mappings written for the network server's
output keep working, cover it with table-driven tests plus a hypothesis test that arbitrary
bytes give readings or `CodecError`, and add it to `CODECS` below. There is deliberately no
plug-in discovery: the list of codecs a collector can run is this dict.
"""

from __future__ import annotations

from ingest.decode import cayenne
from ingest.decode.codec import Codec, CodecError

__all__ = ["CODECS", "Codec", "CodecError", "get", "names"]

CODECS: dict[str, Codec] = {"cayenne-lpp": cayenne.decode}


def names() -> list[str]:
    return sorted(CODECS)


def get(name: str) -> Codec | None:
    """The codec registered under `name`, or None."""
    return CODECS.get(name)
