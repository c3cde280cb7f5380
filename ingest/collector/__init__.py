"""The collector: MQTT in, store out, nothing acknowledged before it is durable.

`pipeline.Collector` takes messages in batches, decodes them and acknowledges them in arrival
order once `durable.Durable` has them in the store or the on-disk spool; `options` holds what
it is told and the totals it keeps."""

from ingest.collector.options import CollectorOptions, Connection, Route, Stats
from ingest.collector.pipeline import Collector, decode

__all__ = ["Collector", "CollectorOptions", "Connection", "Route", "Stats", "decode"]
