"""The generator, checker and pusher of the Grafana files beside it.

The dashboard JSON (`dashboards/json/`) and the alert rules (`dashboards/provisioning/`) are
generated here from the KPI
catalogue (`api/kpis/definitions.py`) and the metric registry (`ingest/units.py`), so that a
KPI's title, formula and unit are written once. `panels.py` holds the small builders of
Grafana's classic dashboard schema, `boards.py` and `outcomes.py` the four dashboards,
`alerts.py` the unified-alerting rules, `files.py` reads and writes the files, `check.py`
validates them (statically, then by running every InfluxQL panel query against InfluxDB)
and `dashboards/cli.py` is the Typer app the composition root mounts as `citypilot dashboards`.
"""
