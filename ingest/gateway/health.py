"""The gateway agent's `/metrics`, `/healthz` and `/readyz` (opt-in: `--metrics-port`).

Ready means that what arrives is taken and forwarded: the spool takes writes and the uplink
is connected; `/readyz` says which one is not (503), so a supervisor or an operator on the
site network sees a full disk or a lost uplink without reading the log. The counts are the
agent's own since it started (the backlog on disk is in its heartbeats, `spool_depth`). A
custom collector reads them at each scrape, so the agent's hot path updates no metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import cast

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette

from ingest.collector.metrics import build_app

Readiness = Callable[[], tuple[bool, dict[str, object]]]
COUNTS = {"accepted": "messages durably in the gateway's spool",
          "delivered": "messages the central broker acknowledged",
          "dropped": "messages the full spool dropped (oldest first)"}


class _Counts(Collector):
    def __init__(self, ready: Readiness) -> None:
        self.ready = ready

    def collect(self) -> Iterator[Metric]:
        _, detail = self.ready()
        for name, doc in COUNTS.items():
            yield CounterMetricFamily(f"citypilot_gateway_{name}_messages", doc,
                                      value=cast(int, detail[name]))
        for name, doc, key in (
                ("uplink_connected", "1 while connected to the central broker",
                 "uplink_connected"),
                ("spool_up", "1 while the spool takes writes", "spool_ok")):
            yield GaugeMetricFamily(f"citypilot_gateway_{name}", doc,
                                    value=float(bool(detail[key])))


def health_app(ready: Readiness) -> Starlette:
    """`ready()`: whether the agent is ready, and its detail: `uplink_connected`,
    `spool_ok` and the counts of `COUNTS`."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_Counts(ready))
    return build_app(registry, ready)
