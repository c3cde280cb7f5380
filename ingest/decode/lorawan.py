"""What the two LoRaWAN network-server adapters (TTS v3, ChirpStack v4) share.

Both deliver an uplink as JSON with the device identity, the network server's receive time,
per-gateway radio metadata, the raw application payload in base64 and — only when a decoder
is configured on the network server — a decoded object. Here: picking the radio status of the
best gateway, and turning the payload into readings: the network server's decoded object when
there is one, else the source's codec (`codecs.py`), else a `no_codec` dead letter.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from typing import Any

from ingest.decode.adapter import AdapterConfig, flatten
from ingest.decode.codecs import CodecError
from ingest.decode.fields import Offered, number
from ingest.model import FieldValue, Reason, TimestampError, to_ns

log = logging.getLogger(__name__)


class PayloadError(ValueError):
    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def network_time(text: object) -> int | None:
    """A network server's RFC 3339 time (nanoseconds kept exactly), or None."""
    if not isinstance(text, str):
        return None
    try:
        return to_ns(text, 0)
    except TimestampError:
        return None


def best_radio(entries: object, rssi_keys: tuple[str, ...] = ("rssi",)) -> dict[str, FieldValue]:
    """RSSI and SNR of the gateway that heard the device best (highest RSSI).

    A device heard by three gateways has three RSSIs; the strongest says whether the device's
    link is healthy, which is what `device_status` is for. Zero values are omitted by both
    network servers (proto3 JSON), so a missing SNR is simply not reported.
    """
    best: dict[str, FieldValue] = {}
    best_rssi = -float("inf")
    if not isinstance(entries, list):
        return best
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        rssi = next((_measured(entry[k]) for k in rssi_keys if k in entry), None)
        if rssi is None or rssi <= best_rssi:
            continue
        best_rssi = rssi
        best = {"rssi": rssi}
        snr = _measured(entry.get("snr"))
        if snr is not None:
            best["snr"] = snr
    return best


def _measured(value: object) -> float | None:
    return None if isinstance(value, bool) else number(value)


def readings(config: AdapterConfig, decoded: object, raw_b64: object,
             f_port: object) -> list[Offered]:
    """The uplink's readings; PayloadError when it has bytes nobody can decode."""
    if isinstance(decoded, Mapping):
        return flatten(decoded)
    if decoded is not None:
        raise PayloadError(Reason.BAD_SHAPE, f"decoded payload is a {type(decoded).__name__}, "
                           "not an object")
    if raw_b64 is None or raw_b64 == "":
        return []  # an uplink without application payload (MAC commands only)
    if not isinstance(raw_b64, str):
        raise PayloadError(Reason.BAD_SHAPE, "raw payload is not a base64 string")
    if config.codec is None:
        raise PayloadError(Reason.NO_CODEC, "uplink carries only raw bytes (no decoder on the "
                           "network server) and the source sets no codec "
                           "(e.g. codec = \"cayenne-lpp\")")
    try:
        payload = base64.b64decode(raw_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(Reason.UNDECODABLE, f"raw payload is not base64: {exc}") from None
    port = f_port if isinstance(f_port, int) and not isinstance(f_port, bool) else 0
    try:
        values: dict[str, Any] = config.codec(payload, port)
    except CodecError as exc:
        raise PayloadError(Reason.UNDECODABLE, f"codec {config.codec_name}: {exc}") from None
    return flatten(values)
