"""Grafana for citypilot: the provisioning YAML (`provisioning/`), the dashboard JSON
(`json/`), and the Python that writes and checks them (`build/`, `cli.py`).

Uses `ingest` (measurement names, the metric registry, InfluxQL quoting) and, of `api`, only
the KPI catalogue (`api.kpis.definitions`): the API's routes are handed in, never imported.
"""
