"""The fixtures themselves: real servers answer, and survive a restart with their data."""

from __future__ import annotations

from collections.abc import Callable

from tests.servers import InfluxDB


def test_influxdb_keeps_data_across_restart(make_influxdb: Callable[..., InfluxDB]) -> None:
    server = make_influxdb()
    server.query("CREATE DATABASE keep")
    import httpx

    httpx.post(f"{server.http}/write", params={"db": "keep"}, content=b"m v=1 1000000000")
    server.restart()
    result = server.query("SELECT v FROM m", database="keep")
    assert result["results"][0]["series"][0]["values"] == [[1000000000, 1.0]]  # type: ignore[index]
