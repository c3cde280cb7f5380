"""Simulated sensors and public services of Smart City pilots, with fault injection, and the
publisher that sends them to the broker (`citypilot simulate`).

`scenario.Scenario` is the deterministic fleet and its timeline of messages; `runner.run` and
`runner.run_async` publish it; `cli.app` is the command. This package uses `ingest` (model,
topics, units) and nothing of `api` or `citypilot`.
"""
