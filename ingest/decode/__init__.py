"""Decoding: bytes from a topic -> points to store, or rejections to dead-letter.

Every format (the native JSON here, the adapters of other gateway formats beside it) is a
`Decoder`: a callable that never raises for bad input; a rejection is data, with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from ingest.model import Decoded


@dataclass(frozen=True, slots=True)
class Limits:
    max_payload_bytes: int = 256 * 1024
    max_future_s: float = 300.0


class Decoder(Protocol):
    def __call__(self, topic: str, payload: bytes, received_ns: int) -> Decoded: ...


@runtime_checkable
class Stateful(Protocol):
    """A decoder whose state must survive a restart (Sparkplug B's births): the collector
    attaches it to its spool directory while it runs."""

    def attach(self, directory: Path) -> None: ...

    def detach(self) -> None: ...
