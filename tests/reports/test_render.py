"""The rendered report (HTML, PDF/A-3b, XLSX) shows the KPI API's numbers, and the PDF is
what an archive asks for as far as the tools here can tell (no veraPDF): the XMP `pdfaid`
identification, every font embedded, the XLSX attached, language and title set, tagged;
every page renders with `pdftoppm`."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pypdf import PdfReader
from pypdf.generic import DictionaryObject

from api.catalog import Pilot
from api.kpis.definitions import BY_ID, KPIS
from api.reports import render
from api.reports.evaluation import Figure
from ingest.stores import open_store
from tests.api.conftest import Live
from tests.contract.test_kpis import D, H, reading
from tests.reports.conftest import BASELINE, END, REPORTED, START, api_values, evaluation

FMT = render.Formats("en")


def _where(kpi_id: str, dims: tuple[tuple[str, str], ...]) -> str:
    return Figure(BY_ID[kpi_id], dims, None, None).where


async def _api(live: Live) -> dict[tuple[str, str], float | None]:
    """(kpi, where) -> the KPI API's value for the report's period."""
    out: dict[tuple[str, str], float | None] = {}
    for kpi in KPIS:
        for dims, value in (await api_values(live, kpi.id, START, END)).items():
            out[(kpi.id, _where(kpi.id, dims))] = value
    return out


class _Cells(HTMLParser):
    """Every element carrying a KPI figure: (kpi, where, data-value, text)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[list[Any]] = []
        self._open: list[Any] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._open is not None:
            self._depth += 1
        elif "data-kpi" in a:
            self._open = [a["data-kpi"], a["data-where"], a["data-value"], ""]
            self._depth = 0

    def handle_endtag(self, tag: str) -> None:
        if self._open is None:
            return
        if self._depth == 0:
            self.cells.append(self._open)
            self._open = None
        else:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._open is not None and self._depth == 0:
            self._open[3] += data


def _fonts_embedded(reader: PdfReader) -> int:
    """How many fonts the pages use; fails on any without an embedded font file."""
    fonts = 0
    for page in reader.pages:
        resources = page.get("/Resources")
        font_dict = resources.get_object().get("/Font", {}) if resources else {}
        for ref in font_dict.get_object().values():
            font = ref.get_object()
            descendants = font.get("/DescendantFonts")
            for f in ([d.get_object() for d in descendants] if descendants else [font]):
                descriptor = f.get("/FontDescriptor")
                assert descriptor is not None, f"font {f.get('/BaseFont')} has no descriptor"
                d = descriptor.get_object()
                assert any(k in d for k in ("/FontFile", "/FontFile2", "/FontFile3")), \
                    f"font {f.get('/BaseFont')} is not embedded"
                fonts += 1
    return fonts


def _tool(name: str) -> str:
    found = shutil.which(name)
    assert found, f"{name} is missing: apt-get install poppler-utils"
    return found


def _pdftotext(path: Path, layout: bool = True) -> str:
    """The PDF's text: laid out as on the page (table rows on a line), else in reading order
    (a paragraph's words in sequence)."""
    return subprocess.run([_tool("pdftotext"), *(["-layout"] if layout else []), str(path),
                           "-"], check=True, capture_output=True, text=True).stdout


def _pdftoppm(path: Path, out: Path) -> list[int]:
    """Every page as a PNG: the size of each image."""
    subprocess.run([_tool("pdftoppm"), "-r", "40", "-png", str(path), str(out / "page")],
                   check=True, capture_output=True)
    return [p.stat().st_size for p in sorted(out.glob("page-*.png"))]


async def test_html_xlsx_and_pdf_show_the_kpi_apis_numbers(live: Live, tmp_path: Path
                                                          ) -> None:
    api = await _api(live)
    ev = await evaluation(live)
    html = render.to_html(ev, "en")
    parser = _Cells()
    parser.feed(html)
    assert len(parser.cells) > len(KPIS)
    for kpi_id, where, value, text in parser.cells:
        expected = api[(kpi_id, where)]
        assert (None if value == "None" else float(value)) == expected, (kpi_id, where)
        assert text.strip().startswith(FMT.num(expected)), (kpi_id, where, text)
    # The registry baseline and its source; a store baseline names its period.
    assert "registry: official station DEBE010, 2023-12-31" in html
    assert "store: baseline period 2024-01-01 to 2024-01-08" in html

    book = openpyxl.load_workbook(io.BytesIO(render.to_xlsx(ev)))
    ww = list(book["with_and_without"].iter_rows(values_only=True))
    header = ww[0]
    for row in ww[1:]:
        r = dict(zip(header, row, strict=True))
        expected = api[(r["kpi"], r["where"] or "")]
        # openpyxl writes 15 significant digits, Excel's own precision.
        assert r["achieved"] == (expected if expected is None else
                                 pytest.approx(expected, rel=1e-14)), (r["kpi"], r["where"])
    pm25 = next(dict(zip(header, row, strict=True)) for row in ww[1:] if row[0] == "pm25_mean")
    assert (pm25["baseline"], pm25["baseline_from"]) == (18.5, "registry")
    assert pm25["baseline_source"] == "official station DEBE010, 2023-12-31"
    assert {"summary", "usage", "weeks", "limits", "allowances", "devices", "uptake",
            "activities", "dead_letters", "kpis", "definitions"} <= set(book.sheetnames)
    assert book["uptake"]["A2"].value == "Stadt Potsdam"

    pdf = render.to_pdf(ev, "en")
    (tmp_path / "r.pdf").write_bytes(pdf)
    text = _pdftotext(tmp_path / "r.pdf")
    lines = text.splitlines()
    for rows in ev.summary.values():  # each summary line holds the API's number
        for c in rows:
            kpi, where = c.figure.kpi.id, c.figure.where
            [line] = [ln for ln in lines if f"({kpi})" in ln and
                      re.search(rf"\s{re.escape(where)}\s" if where else r".", ln)][:1]
            assert FMT.num(api[(kpi, where)]) in line, (kpi, where, line)
    assert "DEBE010" in text and "Stadt Potsdam" in text


async def test_the_pdf_is_pdfa3b_tagged_with_the_xlsx_attached_and_renders(
        live: Live, tmp_path: Path) -> None:
    ev = await evaluation(live)
    path = tmp_path / "report.pdf"
    path.write_bytes(render.to_pdf(ev, "en"))
    reader = PdfReader(path)
    xmp = reader.xmp_metadata
    assert xmp is not None
    packet = xmp.stream.get_data().decode()
    assert 'pdfaid:part="3"' in packet and 'pdfaid:conformance="B"' in packet
    root: DictionaryObject = reader.trailer["/Root"]
    assert root["/Lang"] == "en" and "/StructTreeRoot" in root
    assert root["/MarkInfo"]["/Marked"] is True or root["/MarkInfo"]["/Marked"] == True  # noqa: E712
    assert reader.metadata is not None and reader.metadata.title == render.title(ev)
    assert _fonts_embedded(reader) > 0
    [data] = reader.attachments[render.XLSX_NAME]
    attached = openpyxl.load_workbook(io.BytesIO(data))
    assert [c.value for c in attached["with_and_without"][1]][:4] == [
        "kpi", "title", "where", "unit"]
    sizes = _pdftoppm(path, tmp_path)
    assert len(sizes) == len(reader.pages) > 5 and min(sizes) > 1000


async def test_a_pilot_without_events_registry_or_half_its_period_renders(
        live: Live, tmp_path: Path) -> None:
    now = time.time_ns()
    async with open_store(live.store_url) as store:
        assert await store.write([reading("air_quality", "s1", now - 2 * H, 1.0,
                                          pilot="lonely", pm25=12.0)]) == []
    ev = await evaluation(live, Pilot(id="lonely"), now - 3 * D, now + 3 * D, None, now)
    html = render.to_html(ev, "en")
    for said in ("the pilot is not in the registry", "the period is still in progress",
                 "no targets are registered", "no baselines are registered",
                 "no uses of any service", "None registered: no organisation",
                 "None registered: no trainings"):
        assert said in html, said
    assert "No service has registered devices or uses" in html
    pdf = render.to_pdf(ev, "en")
    assert PdfReader(io.BytesIO(pdf)).pages
    book = openpyxl.load_workbook(io.BytesIO(render.to_xlsx(ev)))
    assert book["uptake"].max_row == 1  # the header only


@pytest.mark.parametrize(("lang", "text"), [("en", "1,597.5"), ("it", "1.597,5")])
def test_numbers_follow_the_language(lang: str, text: str) -> None:
    assert render.Formats(lang).num(1597.5) == text


def test_the_report_language_is_asked_then_registered_then_english() -> None:
    assert render.language(None, None) == "en"
    assert render.language(None, "it") == "it" and render.language("pt", "it") == "pt"
    with pytest.raises(render.ReportError, match="language 'de'"):
        render.language("de", None)
    assert REPORTED.language == "en" and BASELINE[0] < START
