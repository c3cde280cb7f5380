"""What a simulation sent and what a correct collector must make of it.

Every message the scenario generates carries an `Expectation`: the stored point it must become
(or that it adds none, being a re-sent duplicate), or that it must be dead-lettered, and which
fault it carries. The publisher feeds each message it publishes into a `Summary`, so the summary
is exactly what went to the broker; `--summary-json` writes it for tests and scripts that check
the store's counts. A unit test proves the expectations against the real decoder.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ingest.model import EVENT_MEASUREMENT, STATUS_MEASUREMENT
from ingest.topics import Channel

TELEMETRY, EVENT, STATUS = Channel.TELEMETRY.value, Channel.EVENT.value, Channel.STATUS.value


@dataclass(frozen=True, slots=True)
class Expectation:
    """What one generated message must become at a correct collector.

    `bucket` is the telemetry kind or the event's service ("" for status). `stores`: the message
    adds one point to the store. `malformed`: it must become one dead letter. `send`: False for
    a message a fault suppressed (dropout, silence): nothing is published. `copy`: a re-sent
    duplicate of the message before it. `fault`: the fault the scheduled message carries.
    """

    channel: str
    bucket: str
    stores: bool = True
    malformed: bool = False
    send: bool = True
    copy: bool = False
    fault: str | None = None

    @property
    def measurement(self) -> str:
        if self.channel == TELEMETRY:
            return self.bucket
        return EVENT_MEASUREMENT if self.channel == EVENT else STATUS_MEASUREMENT


class Planned(NamedTuple):
    """A message to publish: topic, payload, what it must become, and when it is due (ms)."""

    topic: str
    payload: bytes
    expect: Expectation
    at_ms: int


@dataclass
class Summary:
    """Counts of what was published, per channel, per stored measurement and per fault."""

    messages: Counter[str] = field(default_factory=Counter)
    readings: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    statuses: int = 0
    malformed: int = 0
    duplicates: int = 0
    dropped: int = 0
    scheduled: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    phases: Counter[str] = field(default_factory=Counter)
    acked: int = 0
    refused: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    phase: str = "live"  # the phase that `record` counts messages for

    def record(self, e: Expectation) -> None:
        """Count one generated message (call it for suppressed ones too: they are faults)."""
        if not e.copy:
            self.scheduled += 1
            if e.fault is not None:
                self.faults[e.fault] += 1
        if not e.send:
            self.dropped += 1
            return
        self.messages[e.channel] += 1
        self.phases[self.phase] += 1
        if e.copy:
            self.duplicates += 1
        if e.malformed:
            self.malformed += 1
        elif e.stores:
            if e.channel == TELEMETRY:
                self.readings[e.bucket] += 1
            elif e.channel == EVENT:
                self.events[e.bucket] += 1
            else:
                self.statuses += 1

    @property
    def published(self) -> int:
        return sum(self.messages.values())

    def to_json(self) -> dict[str, Any]:
        """The `--summary-json` document: every count an integer."""
        return {
            "messages": {c: self.messages.get(c, 0) for c in (TELEMETRY, EVENT, STATUS)},
            "readings": {str(k): n for k, n in sorted(self.readings.items()) if n},
            "events": {str(k): n for k, n in sorted(self.events.items()) if n},
            "statuses": self.statuses,
            "malformed": self.malformed,
            "duplicates": self.duplicates,
            "dropped": self.dropped,
            "scheduled": self.scheduled,
            "published": self.published,
            "acked": self.acked,
            "refused": self.refused,
            "faults": {str(k): n for k, n in sorted(self.faults.items())},
            "phases": {p: self.phases.get(p, 0) for p in ("backfill", "live")},
            "cancelled": self.cancelled,
            **self.meta,
        }
