"""Where the dashboards generator (`api/grafana/`) imports its InfluxQL quoting from, until it
moves to `dashboards/`: the code lives in `ingest/stores/influx/influxql.py`."""

from ingest.stores.influx.influxql import conditions, number, quote_ident, quote_literal

__all__ = ["conditions", "number", "quote_ident", "quote_literal"]
