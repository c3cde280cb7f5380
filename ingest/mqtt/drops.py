"""The broker's own count of the messages it dropped, so a loss citypilot cannot prevent is
not a silent one.

A broker drops QoS 1/2 messages for a client whose queue is full: a stock Mosquitto keeps
1,000 per client (`max_queued_messages`) above those in flight and throws the rest away
while a collector is slow or restarting, and logs nothing the collector sees. Mosquitto
publishes the total in its `$SYS` tree (mosquitto(8) of 2.0.11:
`$SYS/broker/publish/messages/dropped`, "the total number of publish messages that have
been dropped due to inflight/queuing limits"). Its src/sys_tree.c publishes the value every
`sys_interval` seconds (default 10) only when it changed, retained, at QoS 2 with a message
expiry of 60 s: a collector that subscribes learns the total at once if it changed in the
last minute, otherwise at the next change. The count is the broker's, over all its clients,
and restarts from 0 with the broker.

EMQX and HiveMQ publish no such topic (see the README's "Broker drops" section for what to
watch there); on them, or when an ACL refuses the subscription, the count stays unknown.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

DROPPED_TOPIC = "$SYS/broker/publish/messages/dropped"


def fatal_refusals(refused: list[str]) -> list[str]:
    """The refused filters that must stop the subscriber: all but the `$SYS` ones, whose
    refusal (an ACL without `topic read $SYS/...`, a broker without a `$SYS` tree) only
    leaves the drop count unknown, and is logged here."""
    optional = [f for f in refused if f.startswith("$SYS/")]
    if optional:
        log.warning("the broker refused the subscription to %s: its count of dropped "
                    "messages stays unknown (add `topic read %s` to the collector's ACL)",
                    ", ".join(optional), DROPPED_TOPIC)
    return [f for f in refused if not f.startswith("$SYS/")]


class BrokerDrops:
    """The last total the broker published; `observe` takes each new one and warns when
    it grew."""

    def __init__(self, broker: str) -> None:
        self.broker = broker
        self.total: int | None = None  # unknown until the broker published it

    def observe(self, payload: bytes) -> int:
        """Take a published total; return how many drops it adds to the last one (all of
        them the first time, and after a restart of the broker, which counts from 0)."""
        try:
            total = int(payload)
        except ValueError:
            log.warning("%s published %r on %s, not a count", self.broker, payload[:40],
                        DROPPED_TOPIC)
            return 0
        before, self.total = self.total, total
        grown = total if before is None or total < before else total - before
        if grown > 0:
            log.warning(
                "the broker %s dropped %d messages (%d since it started): a client's queue "
                "was full, and the messages are lost unless their gateway sends them again. "
                "If the collector was slow or away, raise `max_queued_messages` in "
                "mosquitto.conf (0: no count limit, bounded by `max_queued_bytes`, as "
                "deploy/mosquitto/mosquitto.conf sets it)", self.broker, grown, total)
        return grown
