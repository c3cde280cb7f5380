"""The adapter tests' helpers: a decoder for a source, the expected points, the samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.decode import Limits
from ingest.decode.adapter import Adapter
from ingest.decode.sources import Source, decoder_for
from ingest.model import Decoded, Point, Reason

DATA = Path(__file__).parent / "data" / "payloads"
PILOT = "athens"


def adapter(fmt: str, gateway: str, topic: str = "#", **extra: Any) -> Adapter:
    source = Source(name=gateway, format=fmt, topic=topic, pilot=PILOT, **extra)
    decoder = decoder_for(source, Limits())
    assert isinstance(decoder, Adapter)
    return decoder


def point(measurement: str, gateway: str, device: str, ts: int, **fields: Any) -> Point:
    tags = (("pilot", PILOT), ("gateway", gateway), ("device", device))
    return Point(measurement, tags, fields, ts)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def rejections(decoded: Decoded) -> list[tuple[Reason, str]]:
    return [(r.reason, r.detail) for r in decoded.rejections]
