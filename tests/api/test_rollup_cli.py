"""`citypilot rollup` as an operator runs it, and what the API then says of its KPIs."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from api.kpis.definitions import KPIS
from citypilot.cli import app
from tests.api.conftest import Live
from tests.api.test_routes import PERIOD
from tests.contract.test_rollups import RAW_BY_DESIGN


async def rollup(live: Live, *args: str) -> tuple[int, str]:
    """The command in a thread of its own (it runs an event loop of its own)."""
    env = {"CITYPILOT_STORE_URL": live.store_url, "CITYPILOT_CATALOG_URL": live.catalog_url}
    result = await asyncio.to_thread(CliRunner().invoke, app, ["rollup", *args], env=env)
    return result.exit_code, result.stderr


async def sources(live: Live) -> dict[str, str]:
    out = {}
    for kpi in KPIS:
        body = (await live.get(f"/api/v1/kpis/{kpi.id}", "viewer", pilot="p1", grain="week",
                               **PERIOD)).json()
        out[kpi.id] = body["source"]
    return out


async def test_kpis_read_rollups_once_they_are_built(live: Live) -> None:
    before = await live.get("/api/v1/kpis/usage_events", "viewer", pilot="p1", **PERIOD)
    assert before.json()["source"] == "raw"
    code, err = await rollup(live, "--once")
    assert code == 0 and "rollup pass:" in err and " hours and " in err
    after = await live.get("/api/v1/kpis/usage_events", "viewer", pilot="p1", **PERIOD)
    assert after.json()["source"] == "rollup"
    assert after.json()["values"] == before.json()["values"]  # the same numbers
    got = await sources(live)
    assert {k for k, v in got.items() if v == "raw"} == RAW_BY_DESIGN
    ready = (await live.client.get("/readyz")).json()
    assert ready["checks"]["rollups"].startswith("lag ")


async def test_rebuild_shows_progress_and_refuses_bad_options(live: Live) -> None:
    code, err = await rollup(live, "--rebuild", "--pilot", "p1", "--since", "10000d")
    assert code == 0 and "rollup rebuild: pilot p1:" in err and "rollup rebuilt:" in err
    assert "pilot p2" not in err
    assert (await live.get("/api/v1/kpis/pm25_mean", "viewer", pilot="p1",
                           **PERIOD)).json()["source"] == "rollup"
    for args, message in ((("--rebuild", "--since", "soon"), "--since: 'soon' is not a duration"),
                          (("--pilot", "p1"), "go with --rebuild")):
        code, err = await rollup(live, *args)
        assert code == 2 and message in err
