"""What `citypilot sources check --format F [--topic T] FILE` shows: a sample payload decoded
offline, as the points it would store, the dead letters it would make, or the note that it
would be skipped.

Pure: the CLI reads the file, builds a `Source` (from the config, or a throw-away one for a
bare `--format`), calls `preview` and prints the lines to stdout. Formats whose identity is in
the topic (Zigbee2MQTT, Tasmota, line protocol via Telegraf) need a topic; `SAMPLE_TOPICS`
gives each format a typical one, used when `--topic` is not given.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import orjson

from ingest.decode import Decoder
from ingest.model import Decoded, FieldValue, Point

log = logging.getLogger(__name__)

SAMPLE_TOPICS: dict[str, str] = {
    "citypilot": "citypilot/v1/sample/sample/sample/telemetry",
    "ttn-v3": "v3/sample@ttn/devices/sample/up",
    "chirpstack-v4": "application/sample/device/sample/event/up",
    "zigbee2mqtt": "zigbee2mqtt/sample",
    "tasmota": "tele/sample/SENSOR",
    "influx-lp": "telegraf/sample/sample",
    "sparkplug-b": "spBv1.0/sample/NDATA/sample",
}


def preview(decoder: Decoder, topic: str, payload: bytes, received_ns: int) -> list[str]:
    """Human-readable lines: one per point, one per dead letter, and a skip note."""
    return describe(decoder(topic, payload, received_ns))


def describe(decoded: Decoded) -> list[str]:
    lines = [_point(p) for p in decoded.points]
    for r in decoded.rejections:
        lines.append(f"dead letter  reason={r.reason.value}  {r.detail}")
    if decoded.skipped:
        lines.append("skipped: this message carries no readings (counted, not dead-lettered)")
    if decoded.unknown_metrics:
        names = ", ".join(sorted(set(decoded.unknown_metrics)))
        lines.append(f"not in the metric registry (stored without unit): {names}")
    if not lines:
        lines.append("nothing: no points, no dead letters")
    return lines


def _point(point: Point) -> str:
    tags = ",".join(f"{k}={v}" for k, v in point.tags)
    fields = ",".join(f"{k}={_value(v)}" for k, v in point.fields.items())
    seconds, ns = divmod(point.ts, 10**9)
    when = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{point.measurement},{tags} {fields} {point.ts}  ({when}.{ns:09d}Z)"


def _value(value: FieldValue) -> str:
    return orjson.dumps(value).decode() if isinstance(value, str) else repr(value)
