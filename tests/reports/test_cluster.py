"""The cluster report: three pilots of one installation on the same KPIs (both stores). Every
value in its HTML, XLSX and PDF is the KPI API's for that pilot and period; the figures per
device and per 100,000 inhabitants are those values divided by the pilot's devices deployed
and its registered population; a pilot without population or data still renders, saying so.
Then the command and the route as users meet them."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import openpyxl
import pytest
from pypdf import PdfReader

from api.catalog import Pilot, Registry
from api.kpis.definitions import BY_ID, KPIS
from api.reports import cluster, render
from api.reports.cluster import COMPARABLE, PER_100K, PER_DEVICE
from ingest.stores import open_reader
from tests.api.conftest import P2, URL_FIXTURES, Live, start_live
from tests.api.test_cli import REGISTRY, env, run  # noqa: F401 (env is a fixture)
from tests.contract.test_kpis import NOW
from tests.reports.conftest import END, PERIOD_QUERY, REPORTED, START, api_values
from tests.reports.test_render import _pdftoppm, _pdftotext

FIRST = REPORTED.model_copy(update={"population": 250_000})
SECOND = P2.model_copy(update={"population": 40_000, "operator": "Câmara Municipal"})
THIRD = Pilot(id="c3", name="Third town", timezone="Europe/Rome")  # no population, no data
PILOTS = (FIRST, SECOND, THIRD)
QUERY = {"pilots": "p1,p2,c3", "start": PERIOD_QUERY["start"], "end": PERIOD_QUERY["end"]}


@pytest.fixture(params=sorted(URL_FIXTURES))
async def live(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Live]:
    url = request.getfixturevalue(URL_FIXTURES[request.param])
    async for running in start_live(url, tmp_path, pilots=PILOTS):
        running.catalog.load(Registry(pilots=PILOTS))
        yield running


async def _cluster(live: Live) -> cluster.Cluster:
    async with open_reader(live.store_url) as reader:
        return await cluster.build(reader, [(p, True) for p in PILOTS], START, END,
                                   now_ns=NOW)


def _where(dims: tuple[tuple[str, str], ...]) -> str:
    return " · ".join(v for _, v in dims)


async def _api(live: Live) -> tuple[dict[tuple[str, str, str], float | None],
                                    set[tuple[str, str, str]]]:
    """(pilot, kpi, where) -> the KPI API's value, for the dimensions a cluster compares;
    and which of them are of the whole pilot or one of its services."""
    out, whole = {}, set()
    for pilot in PILOTS:
        for kpi in KPIS:
            for dims, value in (await api_values(live, kpi.id, START, END, pilot.id)).items():
                if {k for k, _ in dims} <= COMPARABLE:
                    out[(pilot.id, kpi.id, _where(dims))] = value
                if {k for k, _ in dims} <= {"service"}:
                    whole.add((pilot.id, kpi.id, _where(dims)))
    return out, whole


class _Cells(HTMLParser):
    """Every cell with a pilot's figure: its data- attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-kpi" in a and "data-pilot" in a:
            self.cells.append(a)


def _number(text: str | None) -> float | None:
    return None if text in (None, "None") else float(str(text))


def _quotients(api: dict[tuple[str, str, str], float | None],
               whole: set[tuple[str, str, str]]) -> dict[tuple[str, str, str, str], float | None]:
    """(pilot, kpi, where, per) -> the API's value divided as the report says: the pilot's
    figures and those of each service, by its devices deployed and its population."""
    out = {}
    for p in PILOTS:
        devices = api.get((p.id, "devices_deployed", ""))
        for (pilot, kpi_id, where), v in api.items():
            if pilot != p.id or (pilot, kpi_id, where) not in whole:
                continue
            if kpi_id in PER_DEVICE:
                out[(p.id, kpi_id, where, "device")] = \
                    None if v is None or not devices else v / devices
            if kpi_id in PER_100K:
                out[(p.id, kpi_id, where, "100k")] = None if v is None or not p.population \
                    else v * 100_000 / p.population
    return out


async def test_every_value_and_quotient_is_the_kpi_apis(live: Live, tmp_path: Path) -> None:
    api, whole = await _api(live)
    per = _quotients(api, whole)
    cl = await _cluster(live)
    html = render.cluster_html(cl, "en")
    parser = _Cells()
    parser.feed(html)
    values = {(c["data-pilot"], c["data-kpi"], c["data-where"]): _number(c["data-value"])
              for c in parser.cells if "data-where" in c}
    shown = {(p, k, w) for p, k, w in values}
    # Every compared figure of every pilot, each as the API gives it (a row a pilot lacks
    # shows no number).
    assert {key for key in api} <= shown
    for key, value in values.items():
        assert value == api.get(key), key
    quotients = {(c["data-pilot"], c["data-kpi"], c["data-row"], c["data-per"]):
                 _number(c["data-value"]) for c in parser.cells if "data-per" in c}
    assert per.keys() <= quotients.keys()
    assert all(v is None for k, v in quotients.items() if k not in per)  # rows a pilot lacks
    for key, expected in per.items():
        assert quotients[key] == pytest.approx(expected), key
    # p1 and p2 have data and a population; c3 neither, and the report says so.
    assert per[("p1", "usage_events", "parking", "100k")] == 4 * 100_000 / 250_000
    assert per[("p2", "devices_deployed", "", "100k")] == 2 * 100_000 / 40_000
    assert all(v is None for (p, *_), v in quotients.items() if p == "c3")
    assert "pilot c3 has no population registered" in html
    assert "no population registered" in html

    book = openpyxl.load_workbook(io.BytesIO(render.cluster_xlsx(cl)))
    rows = list(book["compared"].iter_rows(values_only=True))
    header = rows[0]
    seen = 0
    for row in rows[1:]:
        r = dict(zip(header, row, strict=True))
        key = (r["pilot"], r["kpi"], r["where"] or "")
        if key in api:
            assert r["value"] == pytest.approx(api[key]) if api[key] is not None \
                else r["value"] is None, key
            seen += 1
        if (*key, "100k") in per:
            assert r["per_100000_inhabitants"] == pytest.approx(per[(*key, "100k")]), key
    assert seen == len(api)
    assert [p for p, *_ in book["pilots"].iter_rows(min_row=2, values_only=True)] == \
        ["p1", "p2", "c3"]
    assert {"kpis", "definitions"} <= set(book.sheetnames)

    pdf = tmp_path / "cluster.pdf"
    pdf.write_bytes(render.cluster_pdf(cl, "en"))
    text = _pdftotext(pdf)
    for key in (("p1", "usage_events", "parking", "100k"), ("p2", "devices_deployed", "", "100k"),
                ("p1", "active_users_daily", "", "device")):
        value = per[key]
        assert value is not None and render.Formats("en").num(value) in text, key
    reader = PdfReader(pdf)
    assert reader.trailer["/Root"]["/Lang"] == "en"
    assert render.CLUSTER_XLSX_NAME in reader.attachments
    assert len(_pdftoppm(pdf, tmp_path)) == len(reader.pages) >= 2
    assert BY_ID["usage_events"].formula in " ".join(_pdftotext(pdf, layout=False).split())


async def test_http_compares_the_pilots_a_key_may_read(live: Live) -> None:
    html = await live.get("/api/v1/reports/cluster", "viewer", **QUERY, lang="it")
    assert html.status_code == 200, html.text
    assert html.headers["content-language"] == "it"
    assert "Rapporto di cluster" in html.text and "Third town" in html.text
    pdf = await live.get("/api/v1/reports/cluster", "viewer", **QUERY, format="pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert 'filename="citypilot-cluster-p1-p2-c3-20240115-20240122.pdf"' in \
        pdf.headers["content-disposition"]
    xlsx = await live.get("/api/v1/reports/cluster", "viewer", **QUERY, format="xlsx")
    assert "compared" in openpyxl.load_workbook(io.BytesIO(xlsx.content)).sheetnames
    for who, params, status, field in (
            (None, QUERY, 401, None),
            ("viewer_p2", QUERY, 403, None),
            ("viewer_p2", {**QUERY, "pilots": "p2"}, 200, None),
            ("viewer", {**QUERY, "pilots": "p1,nobody"}, 404, None),
            ("viewer", {**QUERY, "pilots": "p1,p1"}, 422, "query.pilots"),
            ("viewer", {**QUERY, "pilots": "p1,bad id"}, 422, "query.pilots"),
            ("viewer", {**QUERY, "pilots": ",".join(f"x{i}" for i in range(21))}, 422,
             "query.pilots"),
            ("viewer", {**QUERY, "end": QUERY["start"]}, 422, "query.end"),
            ("viewer", {**QUERY, "lang": "de"}, 422, "query.lang")):
        answer = await live.get("/api/v1/reports/cluster", who, **params)
        assert answer.status_code == status, (params, answer.text)
        if status != 200:
            assert answer.headers["content-type"] == "application/problem+json"
        if field:
            assert field in [e["field"] for e in answer.json()["errors"]], params


def test_cli_writes_the_cluster_with_progress(env: dict[str, str],  # noqa: F811
                                              tmp_path: Path) -> None:
    registry = REGISTRY.replace("    timezone: Europe/Berlin\n",
                                "    timezone: Europe/Berlin\n    population: 250000\n")
    (tmp_path / "registry.yaml").write_text(registry + "  - {id: p2, population: 40000}\n")
    assert run(env, "registry", "load", str(tmp_path / "registry.yaml"))[0] == 0
    out = tmp_path / "c.html"
    code, _, err = run(env, "report", "cluster", "--pilots", "p1,p2", "--period",
                       "2024-01-15/2024-01-22", "--format", "html", "--out", str(out))
    assert code == 0, err
    assert "p1: usage_events" in err and "p2: availability" in err and f"wrote {out}" in err
    assert "Compared per device and per 100,000 inhabitants" in out.read_text()
    for args, message in ((("--pilots", "p1,p1"), "--pilots"),
                          (("--pilots", "p1,nobody"), "no pilot 'nobody'"),
                          (("--pilots", "p1", "--lang", "de"), "--lang"),
                          (("--pilots", "p1", "--format", "doc"), "--format")):
        code, _, err = run(env, "report", "cluster", *args, "--period",
                           "2024-01-15/2024-01-22")
        assert code == 2 and message in err, (args, err)
