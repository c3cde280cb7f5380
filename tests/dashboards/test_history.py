"""The history dashboard's panels read the rollups and show exactly what raw points say.

After `citypilot rollup --once` over the simulated store (`conftest.py`), every InfluxQL
panel of the committed `history.json` is run twice over the same finished hours, with the
same variables: its own query on the rollup database, and the raw query it stands for
(`dashboards.build.history.twins`) on the store's database. The numbers must be equal, and
there must be numbers.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from dashboards.build import files
from dashboards.build.history import twins
from dashboards.build.live import Influx, combinations, usable
from dashboards.build.panels import INFLUX, ROLLUPS
from dashboards.build.substitute import TimeRange, interpolate
from ingest.stores import InfluxReader, rollup_database
from tests.dashboards.conftest import HOUR_MS, Simulated
from tests.dashboards.test_check import ROOT

Numbers = dict[tuple[str, tuple[tuple[str, str], ...]], list[list[Any]]]


def _numbers(series: list[dict[str, Any]]) -> Numbers:
    return {(s["name"], tuple(sorted((s.get("tags") or {}).items()))): s["values"]
            for s in series}


def _same(a: Numbers, b: Numbers) -> bool:
    return a.keys() == b.keys() and all(
        len(a[k]) == len(b[k]) and all(
            len(x) == len(y) and all(
                (u is None and v is None) or (u is not None and v is not None
                                              and math.isclose(u, v, rel_tol=1e-9,
                                                               abs_tol=1e-9))
                for u, v in zip(x, y, strict=True))
            for x, y in zip(a[k], b[k], strict=True))
        for k in a)


async def _compare(url: str, until_ms: int) -> dict[str, int]:
    """Per rollup panel, how many numbers both sides answered alike; raises on a mismatch."""
    board = files.load_dashboards(ROOT / "dashboards")["history.json"]
    by_title = twins()
    # Whole hours, the last one finished: Grafana's `$timeFilter` includes its end.
    rng = TimeRange(until_ms - 72 * HOUR_MS, until_ms - 1)
    compared: dict[str, int] = {}
    async with InfluxReader(url) as reader:
        rollups = rollup_database(reader.database)
        # No raw point falls in the millisecond the range leaves out of its last hour.
        assert await reader.influxql(
            f'SELECT count("ingest_delay_s") FROM /.*/ WHERE time > {until_ms - 1}ms AND '
            f"time < {until_ms}ms") == []
        db = Influx(reader, {INFLUX["uid"]: reader.database})
        variables = board["templating"]["list"]
        combos = [c async for c in combinations(variables, rng, db)]
        for panel in board["panels"]:
            for target in panel["targets"]:
                if target["datasource"] != ROLLUPS:
                    continue
                twin = by_title[panel["title"]]
                assert target["query"] == twin.rollup, panel["title"]
                scoped = rng.of_panel(panel)
                count = 0
                for values in usable(twin.rollup, combos, panel):
                    rolled = _numbers(await reader.influxql(
                        interpolate(twin.rollup, values, scoped), db=rollups))
                    raw = _numbers(await reader.influxql(interpolate(twin.raw, values, scoped)))
                    assert _same(rolled, raw), (panel["title"], rolled, raw)
                    count += sum(len(v) for v in raw.values())
                compared[panel["title"]] = count
    return compared


def test_every_rollup_panel_answers_what_its_raw_query_answers(simulated: Simulated) -> None:
    compared = asyncio.run(_compare(simulated.url, simulated.rolled_until_ms))
    assert set(compared) == set(twins())  # every twin is a panel of the committed file
    assert len(compared) >= 9
    assert {title: n for title, n in compared.items() if n == 0} == {}
