"""ChirpStack v4 integration events, as its MQTT integration publishes them (JSON marshaler).

Topic `application/{application id}/device/{dev eui}/event/{type}`; only `up` carries
readings. The payload is the proto3 JSON mapping of `integration.UplinkEvent`: the device is
`deviceInfo.devEui` (or `deviceInfo.deviceName` with `device_key = "deviceName"`), `time` is
the network server's receive time (RFC 3339, `+00:00`, up to nanoseconds: time_source
"network"), `rxInfo[]` holds per-gateway RSSI/SNR (-> device_status), `data` the base64
application payload and `object` — only when the device profile has a codec — the decoded
readings. Without `object` the source's codec decodes `data`; without either the uplink is a
`no_codec` dead letter (its radio status is still stored). proto3 omits zero values, so a
missing `fPort` or `snr` means 0 / not reported.

Every other event type (join, status, ack, txack, log, location, integration) is skipped and
counted. With the protobuf marshaler the payload is binary: a `bad_json` dead letter whose
detail says to switch the integration to JSON.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ingest.decode import lorawan
from ingest.decode.adapter import Adapter, Reading, load_json, reject
from ingest.decode.fields import TimeSource
from ingest.model import Decoded, Reason, Rejection

log = logging.getLogger(__name__)

DEVICE_KEYS = ("devEui", "deviceName")  # fields of deviceInfo a source may name
# Keys only an uplink event has; used when the topic does not say which event this is.
_UPLINK_KEYS = frozenset({"object", "data", "rxInfo", "fPort", "fCnt", "txInfo"})


def _event_type(topic: str) -> str | None:
    parts = topic.split("/")
    for i in range(len(parts) - 1):
        if parts[i] == "event":
            return parts[i + 1]
    return None


class ChirpStackDecoder(Adapter):
    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        event = _event_type(topic)
        if event is not None and event != "up":
            return  # skipped: join, status, ack, txack, log, location, integration
        ok, doc = load_json(out, payload)
        if not ok:
            out.rejections[-1] = _hint(out.rejections[-1])
            return
        if not isinstance(doc, dict) or not isinstance(doc.get("deviceInfo"), dict):
            reject(out, Reason.BAD_SHAPE, "expected a ChirpStack event object with deviceInfo",
                   payload)
            return
        if event is None and not _UPLINK_KEYS & doc.keys():
            return  # skipped: an event without uplink content, seen on an unexpected topic
        key = self.config.device_key or "devEui"
        device = doc["deviceInfo"].get(key)
        if not isinstance(device, str) or not device:
            reject(out, Reason.BAD_SHAPE, f"deviceInfo.{key} is missing", payload)
            return
        reading = self._timed(device, doc, received_ns)
        reading.raw = payload
        reading.status = lorawan.best_radio(doc.get("rxInfo"))
        try:
            reading.values = lorawan.readings(self.config, doc.get("object"), doc.get("data"),
                                              doc.get("fPort"))
        except lorawan.PayloadError as exc:
            reject(out, exc.reason, str(exc), payload)
        self.emit(out, reading, received_ns)

    @staticmethod
    def _timed(device: str, doc: dict[str, Any], received_ns: int) -> Reading:
        ts = lorawan.network_time(doc.get("time"))
        if ts is None:  # `time` is absent when unset; a gateway's own time is the next best
            rx = doc.get("rxInfo")
            first = rx[0] if isinstance(rx, list) and rx else None
            ts = lorawan.network_time(first.get("time")) if isinstance(first, dict) else None
        if ts is None:
            return Reading(device, received_ns, TimeSource.RECEIVED)
        return Reading(device, ts, TimeSource.NETWORK)


def _hint(rejection: Rejection) -> Rejection:
    """Say what to change when the payload is not JSON at all (protobuf marshaler)."""
    if rejection.reason in (Reason.BAD_JSON, Reason.BAD_ENCODING):
        detail = f"{rejection.detail} (is the ChirpStack MQTT integration's marshaler json?)"
        return replace(rejection, detail=detail)
    return rejection
