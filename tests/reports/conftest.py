"""A live API (both stores) with the contract tests' pilot, given targets and baselines, and
the report's content built from the same store; `api_value` asks the KPI API itself."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import pytest

from api.catalog import Activity, Baseline, Pilot, Registry, Target, Uptake
from api.fleet import Fleet
from api.kpis.context import Dims
from api.kpis.periods import rfc3339
from api.reports.evaluation import Evaluation, build
from ingest.stores import open_reader
from tests.api.conftest import URL_FIXTURES, Live, start_live
from tests.contract.test_kpis import BERLIN, NOW, PILOT, D, T

START, END = T, T + 7 * D
BASELINE = (T - 14 * D, T - 7 * D)
PERIOD_QUERY = {"pilot": "p1", "start": rfc3339(START, BERLIN), "end": rfc3339(END, BERLIN)}
REPORTED = PILOT.model_copy(update={
    "language": "en", "operator": "Stadtwerke Test",
    "targets": {"availability": Target(value=3.0, direction="at_least"),
                "usage_events": Target(value=10.0, direction="at_least"),
                "no2_mean": Target(value=40.0, direction="at_most"),
                "pm25_mean": Target(value=20.0, direction="at_most")},
    "baselines": {"pm25_mean": Baseline(value=18.5, source="official station DEBE010",
                                        date=date(2023, 12, 31))},
    "uptake": (Uptake(organisation="Stadt Potsdam", solution="smart parking",
                      date=date(2024, 3, 1), document="Ratsbeschluss 24/017"),),
    "activities": (Activity(type="workshop", actor="citizens", date=date(2024, 1, 17),
                            participants=35),
                   Activity(type="training", actor="public_authority",
                            date=date(2024, 1, 18), participants=8)),
})


@pytest.fixture(params=sorted(URL_FIXTURES))
async def live(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Live]:
    url = request.getfixturevalue(URL_FIXTURES[request.param])
    async for running in start_live(url, tmp_path):
        running.catalog.load(Registry(pilots=(REPORTED,)))
        yield running


async def evaluation(live: Live, pilot: Pilot = REPORTED, start: int = START,
                     end: int = END, baseline: tuple[int, int] | None = BASELINE,
                     now_ns: int = NOW) -> Evaluation:
    async with open_reader(live.store_url) as reader:
        return await build(reader, Fleet(reader, live.catalog), pilot, start, end, baseline,
                           now_ns=now_ns)


def dims_of(point: dict[str, object]) -> Dims:
    order = ("service", "kind", "gateway", "device", "indicator", "regime")
    return tuple(sorted((k, str(point[k])) for k in order if point.get(k) is not None))


async def api_values(live: Live, kpi_id: str, start: int, end: int, pilot: str = "p1",
                     grain: str = "period") -> dict[Dims, float | None]:
    """The KPI API's answer, per dimensions (one bucket with grain `period`)."""
    answer = await live.get(f"/api/v1/kpis/{kpi_id}", "viewer", pilot=pilot,
                            start=rfc3339(start, BERLIN), end=rfc3339(end, BERLIN),
                            grain=grain)
    assert answer.status_code == 200, answer.text
    return {dims_of(p): p["value"] for p in answer.json()["values"]}
