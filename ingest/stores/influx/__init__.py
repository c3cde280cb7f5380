"""The InfluxDB 1.x backend: `InfluxWriter` (the collector's `Store`) and `InfluxReader`,
over one HTTP transport (`http.py`) and the InfluxQL they read with (`influxql.py`)."""

from ingest.stores.influx.http import parse_url
from ingest.stores.influx.reader import InfluxReader
from ingest.stores.influx.writer import InfluxWriter

__all__ = ["InfluxReader", "InfluxWriter", "parse_url"]
