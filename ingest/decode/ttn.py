"""The Things Stack (v3) uplinks, as its MQTT integration publishes them.

Topic `v3/{application id}@{tenant id}/devices/{device id}/up`; the payload is the
`ApplicationUp` JSON: `end_device_ids.device_id` is the device, `uplink_message` holds
`received_at` (the network server's receive time, RFC 3339 with nanoseconds and `Z`: our
timestamp, time_source "network"), `rx_metadata[]` (per-gateway RSSI/SNR -> device_status),
`frm_payload` (base64) and, only when the application has a payload formatter,
`decoded_payload`. Without a formatter the source's codec decodes `frm_payload`; without
either the uplink is a `no_codec` dead letter (its radio status is still stored).

Other messages on the same integration (join accepts, downlink acks/nacks/sent/failed/queued,
location solved, service data, normalized uplinks) carry no readings: skipped and counted.
The official docs' "Uplink message example" is not valid JSON; it is a `bad_json` dead letter.
"""

from __future__ import annotations

import logging
from typing import Any

from ingest.decode import lorawan
from ingest.decode.adapter import Adapter, Reading, load_object, reject
from ingest.decode.fields import TimeSource
from ingest.model import Decoded, Reason

log = logging.getLogger(__name__)

# Top-level keys of the ApplicationUp messages that are not uplinks.
_NOTICES = frozenset({
    "join_accept", "downlink_ack", "downlink_nack", "downlink_sent", "downlink_failed",
    "downlink_queued", "downlink_queue_invalidated", "location_solved", "service_data",
})
DEVICE_KEYS = ("device_id", "dev_eui")  # fields of end_device_ids a source may name


def _message_type(topic: str) -> str | None:
    """`up`, `join`, `down/ack`, ... from a TTS topic, or None when the topic is not one."""
    parts = topic.split("/")
    for i in range(len(parts) - 2):
        if parts[i] == "devices":
            return "/".join(parts[i + 2:])
    return None


class TtnDecoder(Adapter):
    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        kind = _message_type(topic)
        if kind is not None and kind != "up":
            return  # skipped
        doc = load_object(out, payload, "a The Things Stack message")
        if doc is None:
            return
        up = doc.get("uplink_message")
        if up is None and _NOTICES & doc.keys():
            return  # skipped
        if not isinstance(up, dict):
            reject(out, Reason.BAD_SHAPE, "no uplink_message object", payload)
            return
        device = self._device(doc.get("end_device_ids"))
        if device is None:
            key = self.config.device_key or "device_id"
            reject(out, Reason.BAD_SHAPE, f"end_device_ids.{key} is missing", payload)
            return
        reading = self._timed(device, up, doc, received_ns)
        reading.raw = payload
        reading.status = lorawan.best_radio(up.get("rx_metadata"), ("rssi", "channel_rssi"))
        try:
            reading.values = lorawan.readings(self.config, up.get("decoded_payload"),
                                              up.get("frm_payload"), up.get("f_port"))
        except lorawan.PayloadError as exc:
            reject(out, exc.reason, str(exc), payload)
        self.emit(out, reading, received_ns)

    def _device(self, ids: Any) -> str | None:
        if not isinstance(ids, dict):
            return None
        value = ids.get(self.config.device_key or "device_id")
        return value if isinstance(value, str) and value else None

    @staticmethod
    def _timed(device: str, up: dict[str, Any], doc: dict[str, Any], received_ns: int
               ) -> Reading:
        # The network server's receive time is the closest to the device's transmission; the
        # top-level received_at is when the application server handled it.
        for text in (up.get("received_at"), doc.get("received_at")):
            ts = lorawan.network_time(text)
            if ts is not None:
                return Reading(device, ts, TimeSource.NETWORK)
        return Reading(device, received_ns, TimeSource.RECEIVED)
