"""`citypilot doctor` and `GET /api/v1/doctor`: a pre-flight check of what the faults of
issue 14 taught (the broker's queue limit and persistence, InfluxDB's limits, the spool's
disk, clocks, certificates, shipped secrets, rollup lag), one finding per line with its fix.

`checks` holds the pure checks and the `Finding` type; `facts` gathers the facts and runs
them (`examine`); `cli` mounts the command.
"""
