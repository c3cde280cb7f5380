"""The ingest benchmark (`make bench`, `python -m bench`): citypilot's end-to-end throughput,
latency and memory, measured against the ceilings of the broker and of InfluxDB in the same
run on the same machine. Run on purpose, never part of `make test`; not installed with the
distribution (pyproject packages only citypilot, ingest, api and simulators).
"""
