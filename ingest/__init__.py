"""The citypilot data path: model, topics, decoding, stores, spool, collector.

`ingest` never imports `api`, `simulators` or `citypilot` (tests/unit/test_layering.py).
"""
