"""The report's content is the KPI API's numbers: every figure, for the period and the
baseline period; registry baselines and targets with their source; marks by direction."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import openpyxl

from api.kpis.definitions import KPIS, Family
from api.reports import render
from api.reports.evaluation import Comparison
from api.reports.judgement import Corner, Mark
from tests.api.conftest import Live
from tests.reports.conftest import BASELINE, END, START, api_values, evaluation


def _sorted_dims(dims: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(dims))


async def test_every_figure_is_the_kpi_apis_for_the_period_and_the_baseline(live: Live
                                                                          ) -> None:
    ev = await evaluation(live)
    assert {c.figure.kpi.id for c in ev.comparisons} == {k.id for k in KPIS}
    for kpi in KPIS:
        now = await api_values(live, kpi.id, START, END)
        before = await api_values(live, kpi.id, *BASELINE)
        mine = {_sorted_dims(c.figure.dims): c for c in ev.comparisons
                if c.figure.kpi.id == kpi.id}
        assert {d: c.figure.value for d, c in mine.items()} == now, kpi.id
        for dims, row in mine.items():
            if kpi.id in ev.pilot.baselines:
                continue
            if before.get(dims) is not None:
                assert (row.baseline, row.baseline_from) == (before[dims], "store"), kpi.id
            else:
                assert row.baseline is None and row.baseline_from == "", kpi.id


async def test_registry_baseline_and_targets_show_with_source_and_direction(live: Live
                                                                           ) -> None:
    ev = await evaluation(live)
    rows = {(c.figure.kpi.id, c.figure.where): c for c in ev.comparisons}
    pm25 = rows[("pm25_mean", "g1/aq1")]
    assert (pm25.baseline, pm25.baseline_from) == (18.5, "registry")
    assert pm25.baseline_note == "official station DEBE010, 2023-12-31"
    assert pm25.figure.value is not None and pm25.change == pm25.figure.value - 18.5
    # at_most 20 µg/m³: g1/aq1 (about 13.5) is met, g2/x1 (26) is not.
    assert pm25.mark is Mark.MET and rows[("pm25_mean", "g2/x1")].mark is Mark.NOT_MET
    # at_least 3 % availability: the pilot's 4.2 % is met; at_least 10 uses: not met.
    assert rows[("availability", "")].mark is Mark.MET
    assert rows[("usage_events", "parking")].mark is Mark.NOT_MET
    assert rows[("no2_mean", "g2/x1")].mark is Mark.NOT_MET  # 500 > 40, at_most
    assert rows[("devices_online", "")].mark is Mark.NO_TARGET
    assert rows[("lighting_energy_saving", "")].target is None
    summary = {c.figure.kpi.id for rows_ in ev.summary.values() for c in rows_}
    assert {"usage_events", "availability", "no2_mean", "pm25_mean"} <= summary
    # Services: working at the registered 3 % availability target; parking's 4 uses over 2
    # used terminals in 7 days is less than one a device a day.
    parking = next(s for s in ev.services if s.service == "parking")
    assert ev.works_at == 3.0 and parking.corner is Corner.WORKS_BUT_UNUSED
    assert ev.activity_totals == [("citizens", "workshop", 1, 35),
                                  ("public_authority", "training", 1, 8)]


async def test_dead_letters_by_reason_add_up_to_the_rejection_rate_kpi(live: Live) -> None:
    ev = await evaluation(live)
    [rate] = [c.figure for c in ev.comparisons if c.figure.kpi.id == "rejection_rate"]
    assert sum(n for _, n in ev.dead_letters) == dict(rate.context)["rejected"] > 0


async def test_outcomes_per_station_with_nothing_to_compare_are_one_row(live: Live) -> None:
    # Without a baseline period, stations' outcomes have no baseline: the with-and-without
    # table gives such a KPI one row (its stations are in the outcomes section), and keeps
    # every row of a KPI where one station has a target or a baseline to compare with.
    ev = await evaluation(live, baseline=None)
    rows = render.with_and_without(ev)
    folded = {r.kpi.id: r.count for r in rows if isinstance(r, render.Stations)}
    by_kpi: dict[str, list[Comparison]] = {}
    for c in ev.comparisons:
        by_kpi.setdefault(c.figure.kpi.id, []).append(c)
    assert folded, "the contract pilot has outcomes per station without targets"
    for kpi_id, comparisons in by_kpi.items():
        nothing = all(c.figure.kpi.family is Family.OUTCOME and "device" in dict(c.figure.dims)
                      and c.baseline is None and c.target is None for c in comparisons)
        if nothing:
            assert folded[kpi_id] == len(comparisons), kpi_id
        else:
            assert kpi_id not in folded and all(c in rows for c in comparisons), kpi_id
    assert {c.figure.kpi.id for c in ev.limits} >= set(folded) - {"exceedances_left"}
    html = render.to_html(ev)
    for kpi_id, count in folded.items():
        assert f"({kpi_id}," in html and f"Stations: {count}, each in" in html
    # The XLSX keeps a row per station.
    book = openpyxl.load_workbook(io.BytesIO(render.to_xlsx(ev)))
    assert len(list(book["with_and_without"].iter_rows())) == 1 + len(ev.comparisons)


class _Tables(HTMLParser):
    """The tables of the outcomes section: each a list of rows of cell texts."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self._in = self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._in = dict(attrs).get("id") == "outcomes"
        elif self._in and tag == "table":
            self.tables.append([])
        elif self._in and tag == "tr":
            self.tables[-1].append([])
        elif self._in and tag in ("td", "th"):
            self.tables[-1][-1].append("")
            self._cell = True

    def handle_endtag(self, tag: str) -> None:
        if self._in and tag in ("td", "th"):
            self.tables[-1][-1][-1] = " ".join(self.tables[-1][-1][-1].split())
            self._cell = False
        self._in = self._in and tag != "section"

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.tables[-1][-1][-1] += data


async def test_outcomes_are_a_row_per_station_and_a_column_per_regime(live: Live) -> None:
    ev = await evaluation(live)
    parser = _Tables()
    parser.feed(render.to_html(ev))
    *limits, left = parser.tables
    assert [o.kpi.id for o in render.outcomes(ev)] == list(dict.fromkeys(
        c.figure.kpi.id for c in ev.limits))
    assert len(limits) == len(render.outcomes(ev))
    words = {None: "no data", True: "within", False: "beyond"}
    shown = []
    for table, outcome in zip(limits, render.outcomes(ev), strict=True):
        header, *rows = table
        regimes = [limit.regime.value for limit in outcome.kpi.limits]
        assert header[:2] == ["Station", "Value"] and len(header) == 2 + len(regimes)
        assert all(h.startswith(r) for h, r in zip(header[2:], regimes, strict=True))
        for cells in rows:
            checks = [c for c in ev.limits if c.figure.kpi.id == outcome.kpi.id
                      and c.figure.where == cells[0]]
            assert [c.limit.regime.value for c in checks] == regimes, cells
            assert cells[2:] == [words[c.within] for c in checks], cells
            shown += checks
    assert sorted(map(id, shown)) == sorted(map(id, ev.limits))  # each check once
    # Exceedances left: a row per indicator and station, a column per regime.
    header, *rows = left
    regimes = header[2:]
    assert header[:2] == ["Indicator", "Station"] and set(regimes) == {
        dict(a.dims)["regime"] for a in ev.allowances}
    cells = {(r[0], r[1], regime): value for r in rows
             for regime, value in zip(regimes, r[2:], strict=True)}
    assert len(rows) == len({(r[0], r[1]) for r in rows})
    for a in ev.allowances:
        d = dict(a.dims)
        value = cells.pop((d["indicator"], f"{d['gateway']}/{d['device']}", d["regime"]))
        assert value.startswith(render.Formats("en").num(a.value)), (a.dims, value)
    assert set(cells.values()) <= {"—"}  # what is left: regimes without such a limit
