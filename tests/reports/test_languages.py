"""The report in each of its languages: every catalogue translates every message the code
marks (the `.pot`, itself checked against a fresh `pybabel extract`), a report in a language
other than English shows none of the English texts, numbers follow the language in the HTML
and the PDF, and the language defaults to the pilot's registered one, then English."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from api.catalog import LANGUAGES, Baseline, Pilot, Registry
from api.kpis.definitions import Regime
from api.kpis.periods import Grain
from api.kpis.service import compute
from api.reports import cluster, render
from api.reports.cluster import Cluster
from api.reports.evaluation import Evaluation
from api.texts import Msg
from ingest.stores import open_reader
from tests.api.conftest import P2, Live
from tests.contract.test_kpis import NOW, PILOT, D, T
from tests.reports.conftest import END, PERIOD_QUERY, REPORTED, START, evaluation
from tests.reports.test_render import _Cells, _pdftotext

ROOT = Path(__file__).resolve().parents[2]
POT = ROOT / "api" / "reports" / "locale" / "messages.pot"
OTHERS = [lang for lang in LANGUAGES if lang != "en"]
# Placeholders a translation keeps: str.format's ({name}) and the template's (%(name)s, %%).
_PLACEHOLDER = re.compile(r"\{\w*\}|%\(\w+\)s|%%")
# A run of four or more plain English words (the first may be capitalised).
_RUN = re.compile(r"\b[A-Za-z][a-z]+(?:[ -][a-z]+){3,}\b")
# Names that stay English in every language: the regimes (laws and guidelines).
_NAMES = tuple(r.value for r in Regime)
# A registered language, and a baseline of four digits with a decimal for the number format.
ITALIAN = REPORTED.model_copy(update={"language": "it", "baselines": {
    **REPORTED.baselines, "usage_events": Baseline(value=1597.5, source="contatore comunale",
                                                   date=date(2023, 12, 31))}})


def _read(path: Path, lang: str | None = None) -> Catalog:
    with path.open("rb") as f:
        return read_po(f, locale=lang)


def _ids(catalog: Catalog) -> list[str]:
    return [m.id for m in catalog if m.id and isinstance(m.id, str)]


def _english(ids: list[str]) -> tuple[set[str], set[str]]:
    """The English texts a translated report must not show: each message's literal parts of
    more than two words (placeholders split a message), and every run of four plain words."""
    parts, runs = set(), set()
    for mid in ids:
        for part in _PLACEHOLDER.split(mid.replace("%%", "%")):
            part = " ".join(part.split()).strip(" ,;:()")
            if len(part.split()) > 2:
                parts.add(part)
            runs.update(m.group(0) for m in _RUN.finditer(part))
    return parts, runs


class _Text(HTMLParser):
    """The text a reader sees (and a screen reader hears: the charts' titles and
    descriptions), without the style sheet; the description meta tag too."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._style = tag == "style"
        a = dict(attrs)
        if tag == "meta" and a.get("name") == "description":
            self.chunks.append(a.get("content") or "")

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if not self._style:
            self.chunks.append(data)


def _visible(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(" ".join(parser.chunks).split())


def _shown(text: str, parts: set[str], runs: set[str]) -> list[str]:
    for name in _NAMES:
        text = text.replace(name, "")
    return sorted(p for p in parts | runs if p in text)


@pytest.mark.parametrize("lang", OTHERS)
def test_every_message_has_a_translation(lang: str) -> None:
    wanted = _ids(_read(POT))
    catalog = _read(POT.parent / lang / "LC_MESSAGES" / "messages.po", lang)
    missing = [i for i in wanted if i not in catalog or not catalog[i].string]
    assert not missing, f"{lang}: {len(missing)} untranslated, e.g. {missing[:3]}"
    assert not catalog.fuzzy and not [m.id for m in catalog if m.id and m.fuzzy]
    assert set(_ids(catalog)) == set(wanted), "the .po is not merged: pybabel update"
    for mid in wanted:
        text = catalog[mid].string
        assert isinstance(text, str)
        assert sorted(_PLACEHOLDER.findall(mid)) == sorted(_PLACEHOLDER.findall(text)), \
            (lang, mid, text)
    # Babel's checks of %-placeholders, for the template's texts (the only ones %-formatted:
    # "{accuracy} % of" in a formula is no placeholder).
    assert [(m.id, e) for m, errors in catalog.check() for e in errors
            if any(path.endswith(".html") for path, _ in m.locations)] == []


def test_the_pot_holds_every_marked_text(tmp_path: Path) -> None:
    """`pybabel extract` (its configuration in pyproject.toml) finds what the .pot has."""
    fresh = tmp_path / "messages.pot"
    subprocess.run([sys.executable, "-c", "from babel.messages.frontend import main; main()",
                    "--quiet", "extract", "--output-file", str(fresh)], cwd=ROOT, check=True)
    assert _ids(_read(fresh)) == _ids(_read(POT)), \
        "the .pot is stale: pybabel extract, then pybabel update"


async def _both(live: Live) -> list[Evaluation]:
    """The contract pilot with targets, baselines, uptake and activities, and a pilot that
    is not registered and whose period is in progress (the report's "what is missing")."""
    import time

    from tests.contract.test_kpis import D
    now = time.time_ns()
    return [await evaluation(live, ITALIAN),
            await evaluation(live, Pilot(id="lonely"), now - 3 * D, now + 3 * D, None, now)]


async def _cluster(live: Live) -> Cluster:
    """The contract pilot, p2 without a population and an unregistered pilot."""
    async with open_reader(live.store_url) as reader:
        return await cluster.build(reader, [(ITALIAN, True), (P2, True), (Pilot(id="p9"), False)],
                                   START, END, now_ns=NOW)


async def test_no_english_sentence_in_a_translated_report(live: Live, tmp_path: Path
                                                          ) -> None:
    parts, runs = _english(_ids(_read(POT)))
    evaluations = await _both(live)
    grouped = await _cluster(live)

    def html(lang: str) -> str:
        return " ".join([*(_visible(render.to_html(ev, lang)) for ev in evaluations),
                         _visible(render.cluster_html(grouped, lang))])

    seen = _shown(html("en"), parts, set())
    assert len(seen) > 0.8 * len(parts), "the English reports show too few of the texts"
    for lang in OTHERS:
        assert _shown(html(lang), parts, runs) == [], lang
    pdf = tmp_path / "it.pdf"
    pdf.write_bytes(render.to_pdf(evaluations[0], "it"))
    text = " ".join(_pdftotext(pdf, layout=False).split())
    assert "Con e senza il pilota" in text and "Metodo e qualità dei dati" in text
    assert _shown(text, parts, runs) == []


async def test_numbers_follow_the_language_in_html_and_pdf(live: Live, tmp_path: Path
                                                           ) -> None:
    ev = await evaluation(live, ITALIAN)
    it, en = render.Formats("it"), render.Formats("en")
    html = render.to_html(ev, "it")
    assert "1.597,5" in _visible(html) and "1,597.5" not in html
    assert "1,597.5" in _visible(render.to_html(ev, "en"))
    cells = _Cells()
    cells.feed(html)
    for kpi_id, where, value, text in cells.cells:
        if value != "None":
            assert text.strip().startswith(it.num(float(value))), (kpi_id, where, text)
    pdf = tmp_path / "it.pdf"
    pdf.write_bytes(render.to_pdf(ev, "it"))
    text = _pdftotext(pdf)
    assert "1.597,5" in text and "1,597.5" not in text
    decimals = [c.figure.value for rows in ev.summary.values() for c in rows
                if c.figure.value is not None and it.num(c.figure.value) != en.num(
                    c.figure.value)]
    assert decimals, "no summary figure whose format differs between it and en"
    for value in decimals:
        assert it.num(value) in text, value


async def test_the_language_defaults_to_the_pilots_then_english(live: Live) -> None:
    live.catalog.load(Registry(pilots=(ITALIAN,)))
    answer = await live.get("/api/v1/reports/evaluation", "viewer", **PERIOD_QUERY)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-language"] == "it"
    assert "Con e senza il pilota" in answer.text and '<html lang="it">' in answer.text
    asked = await live.get("/api/v1/reports/evaluation", "viewer", **PERIOD_QUERY, lang="sl")
    assert asked.headers["content-language"] == "sl" and "S pilotom in brez njega" in asked.text
    live.catalog.load(Registry(pilots=(REPORTED.model_copy(update={"language": None}),)))
    plain = await live.get("/api/v1/reports/evaluation", "viewer", **PERIOD_QUERY)
    assert plain.headers["content-language"] == "en" and "With and without the pilot" in \
        plain.text


async def test_a_reason_made_of_parts_is_translated_part_by_part(live: Live) -> None:
    # Lden's missing parts, joined by "or": the contract pilot's second day has neither an
    # evening nor a night of noise readings.
    async with open_reader(live.store_url) as reader:
        result = await compute(reader, PILOT, "noise_lden", T, T + 2 * D, Grain.DAY,
                               now_ns=NOW)
    [reason] = [v.reason for v in result.values if v.reason]
    assert reason == "no evening or night noise readings in the period"
    assert isinstance(reason, Msg)
    said = {lang: reason.say(render.translations(lang).gettext, str) for lang in ("it", "fr")}
    assert said == {"it": "nessuna lettura del rumore (sera o notte) nel periodo",
                    "fr": "aucune mesure de bruit (soirée ou nuit) sur la période"}
