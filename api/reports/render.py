"""The evaluation report as HTML, PDF/A-3b and XLSX, from one `Evaluation`; the cluster
report the same way from one `Cluster`.

One Jinja2 template per report (`templates/evaluation.html`, `templates/cluster.html`, which
share the style and the KPI definitions) makes the HTML and, through WeasyPrint, the PDF:
PDF/A-3b (WeasyPrint writes the XMP `pdfaid` identification, an sRGB output intent and embeds
every font), tagged, with the document's language and title, and the report's own XLSX
embedded as an associated file, so the data travels with the document. Numbers and dates
follow the report's language (Babel: `1,597.5` in English, `1.597,5` in Italian).

Texts go through gettext: the template's `_()`, this module's `_()`, and `Formats.say` for the
texts marked where they are written (`api.texts`: KPI titles, formulas and limit values, the
judgement's marks and corners, what is missing). The catalogues are `locale/<lang>/LC_MESSAGES/
messages.po`, compiled with Babel when a language is first used: the `.po` is the one copy of
a translation (no `.mo` to keep in step). English is the texts themselves.
"""

from __future__ import annotations

import gettext
import io
import logging
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.resources import files
from typing import Any

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from api.catalog import LANGUAGES, ActivityType, Helix
from api.exports import kpi_sheets, save, sheet, workbook
from api.kpis.definitions import KPIS, Family, Kpi, describe
from api.kpis.periods import NS, from_ns
from api.reports import charts, judgement
from api.reports.cluster import Cluster
from api.reports.evaluation import Comparison, Evaluation, Figure, LimitCheck
from api.reports.judgement import Corner, Mark
from api.texts import N_, Msg

log = logging.getLogger(__name__)

NUMBER = "#,##0.##"  # every figure of the report: grouped, at most two decimals
PERCENT = "#,##0.#"
MARK_SIGN = {Mark.MET: "✓", Mark.NOT_MET: "✗", Mark.NO_TARGET: "–", Mark.NO_DATA: "?"}
XLSX_NAME = "evaluation-data.xlsx"
CLUSTER_XLSX_NAME = "cluster-data.xlsx"
LOCALE = files("api.reports") / "locale"  # <lang>/LC_MESSAGES/messages.po, messages.pot
# The registry's activity types and actors are ids; the report names them.
LABELS: dict[str, str] = {
    ActivityType.TRAINING.value: N_("training"),
    ActivityType.MATCHMAKING.value: N_("matchmaking or brokerage event"),
    ActivityType.WORKSHOP.value: N_("workshop"),
    ActivityType.POLICY_DIALOGUE.value: N_("policy dialogue"),
    Helix.BUSINESS.value: N_("business"), Helix.ACADEMIA.value: N_("academia"),
    Helix.PUBLIC_AUTHORITY.value: N_("public authority"), Helix.CITIZENS.value: N_("citizens")}


class ReportError(ValueError):
    """A report that cannot be made as asked (an unknown language)."""


def language(requested: str | None, registered: str | None) -> str:
    """`--lang`, else the pilot's registered language, else English."""
    lang = requested or registered or "en"
    if lang not in LANGUAGES:
        raise ReportError(f"language {lang!r}: use one of {', '.join(LANGUAGES)}")
    return lang


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The report's catalogue for `lang`, compiled from its `.po` (fuzzy entries left out)."""
    if lang == "en":
        return gettext.NullTranslations()
    with (LOCALE / lang / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=lang)
    mo = io.BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


class Formats:
    """Texts, numbers and dates in one language."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.gettext = translations(lang).gettext

    def say(self, text: str) -> str:
        """A text marked where it is written (`api.texts`) in this language."""
        if not text:
            return text  # gettext("") is the catalogue's header
        if isinstance(text, Msg):
            return text.say(self.gettext, self.num)
        return self.gettext(str(text))  # an enum's value: Enum hashes by name

    def label(self, value: str) -> str:
        """An activity type or actor in words."""
        return self.gettext(LABELS.get(str(value), str(value)))

    def num(self, value: float | None) -> str:
        return "—" if value is None else format_decimal(value, NUMBER, locale=self.lang)

    def pct(self, value: float | None) -> str:
        return "—" if value is None else \
            f"{format_decimal(value, PERCENT, locale=self.lang)} %"

    def day(self, ns: int, ev: Evaluation | Cluster) -> str:
        return format_date(from_ns(ns, ev.timezone).date(), "long", locale=self.lang)

    def week(self, ns: int, ev: Evaluation) -> str:
        return format_date(from_ns(ns, ev.timezone).date(), "d MMM", locale=self.lang)


@cache
def _env(lang: str) -> Environment:
    """The template's environment with the catalogue of `lang` (one per language, so that
    reports in different languages can render at the same time)."""
    env = Environment(loader=PackageLoader("api.reports", "templates"),
                      autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True)
    env.install_gettext_translations(translations(lang), newstyle=True)  # type: ignore[attr-defined]
    return env


def _charts(ev: Evaluation, f: Formats) -> dict[str, Any]:
    _ = f.gettext
    trends = {s.service: charts.trend(
        _("{service}: uses and availability per week").format(service=s.service),
        [(f.week(w.start, ev), w.uses, w.availability) for w in s.weeks], f.num,
        _("uses"), _("availability (%)")) for s in ev.services}
    points = [(s.service, ev.availability.value,
               s.per_device.value / ev.days if s.per_device and s.per_device.value is not None
               else None) for s in ev.services]
    names = (f.say(Corner.USED_BUT_UNRELIABLE), f.say(Corner.WORKING_AND_USED),
             f.say(Corner.NEITHER), f.say(Corner.WORKS_BUT_UNUSED))
    quadrant = charts.quadrant(_("Usage against availability per service"), points,
                               ev.works_at, judgement.USED_PER_DEVICE_PER_DAY, names,
                               (_("availability of the pilot (%)"),
                                _("uses per device and day")), f.num) if ev.services else None
    limits: dict[str, Any] = {}
    for check in ev.limits:
        kpi = check.figure.kpi
        if kpi.id in limits:
            continue
        rows = [(c.figure.where, c.figure.value) for c in ev.limits
                if c.figure.kpi.id == kpi.id and c.figure.value is not None
                and c.limit == kpi.limits[0]]
        bounds = [(float(lim.allowed) if lim.allowed is not None else lim.value,
                   lim.regime.value.split(" (")[0]) for lim in kpi.limits]
        limits[kpi.id] = charts.against_limits(
            f.say(kpi.title), [(w, v) for w, v in rows if v is not None], bounds,
            kpi.unit, f.num) if rows else None
    return {"trends": trends, "quadrant": quadrant, "limits": limits}


@dataclass(frozen=True, slots=True)
class Stations:
    """A with-and-without row standing for a KPI's stations, each shown in the outcomes."""

    kpi: Kpi
    count: int


def with_and_without(ev: Evaluation) -> list[Comparison | Stations]:
    """The rows of the with-and-without table. An outcome KPI per station with neither a
    baseline nor a target for any station is one row: its stations' figures are in the
    outcomes section, and rows of "—" beside them, station by station, made 28 of a year's
    report's 67 pages. The XLSX keeps every station's row."""
    def plain(c: Comparison) -> bool:
        return (c.figure.kpi.family is Family.OUTCOME and "device" in dict(c.figure.dims)
                and c.baseline is None and c.target is None)
    rows = Counter(c.figure.kpi.id for c in ev.comparisons)
    folded = Counter(c.figure.kpi.id for c in ev.comparisons if plain(c))
    out: list[Comparison | Stations] = []
    for c in ev.comparisons:
        kpi = c.figure.kpi
        if folded[kpi.id] < rows[kpi.id]:  # a row of it has more to say: keep them all
            out.append(c)
        elif kpi.id not in {r.kpi.id for r in out if isinstance(r, Stations)}:
            out.append(Stations(kpi, folded[kpi.id]))
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    """A limited KPI of the outcomes section: a column per limit (its regime), a row per
    station holding the station's checks in the columns' order."""

    kpi: Kpi
    checks: list[list[LimitCheck]]

    @property
    def columns(self) -> list[LimitCheck]:
        return self.checks[0]


def outcomes(ev: Evaluation) -> list[Outcome]:
    """The outcomes section's tables: one per limited KPI, a station per row. (A row per
    station and regime, with the limit written out in each, made 16 of a year's 39 pages.)"""
    rows: dict[str, dict[tuple[tuple[str, str], ...], list[LimitCheck]]] = {}
    for c in ev.limits:
        rows.setdefault(c.figure.kpi.id, {}).setdefault(c.figure.dims, []).append(c)
    return [Outcome(next(iter(by.values()))[0].figure.kpi, list(by.values()))
            for by in rows.values()]


def allowances(ev: Evaluation) -> tuple[list[str], list[tuple[str, str, list[Figure | None]]]]:
    """The allowed exceedances left: the regimes (the columns) and a row per indicator and
    station holding each regime's figure (None where the regime has no such limit)."""
    regimes: list[str] = []
    rows: dict[tuple[str, str], dict[str, Figure]] = {}
    for a in ev.allowances:
        d = dict(a.dims)
        regime = d.get("regime", "—")
        if regime not in regimes:
            regimes.append(regime)
        station = "/".join(d[k] for k in ("gateway", "device") if k in d)
        rows.setdefault((d.get("indicator", "—"), station), {})[regime] = a
    return regimes, [(indicator, station, [by.get(r) for r in regimes])
                     for (indicator, station), by in rows.items()]


def to_html(ev: Evaluation, lang: str = "en") -> str:
    f = Formats(lang)
    return _env(lang).get_template("evaluation.html").render(
        ev=ev, rows=with_and_without(ev), outcomes=outcomes(ev), allowances=allowances(ev),
        f=f, lang=lang, Family=Family, dict=dict, Mark=Mark, sign=MARK_SIGN, describe=describe,
        charts=_charts(ev, f), title=title(ev, lang),
        made=format_date(from_ns(ev.now).date(), "long", locale=lang))


def title(ev: Evaluation, lang: str = "en") -> str:
    _ = translations(lang).gettext
    return _("Pilot evaluation: {pilot}").format(pilot=ev.pilot.name or ev.pilot.id)


def to_pdf(ev: Evaluation, lang: str = "en") -> bytes:
    """PDF/A-3b, tagged, with the XLSX of the report's numbers attached."""
    return _pdf(to_html(ev, lang), to_xlsx(ev), XLSX_NAME, lang)


def _pdf(html: str, xlsx: bytes, name: str, lang: str) -> bytes:
    from weasyprint import HTML, Attachment  # heavy (Pango): only when a PDF is asked for

    _ = translations(lang).gettext
    attachment = Attachment(string=xlsx, name=name,
                            description=_("the report's tables and KPI definitions"),
                            relationship="Data")
    with warnings.catch_warnings():
        # WeasyPrint 70 opens its sRGB profile (the PDF/A output intent) without closing it.
        warnings.simplefilter("ignore", ResourceWarning)
        pdf: bytes = HTML(string=html).write_pdf(pdf_variant="pdf/a-3b", pdf_tags=True,
                                                attachments=[attachment])
    return pdf


def _local(ns: int, ev: Evaluation) -> datetime:
    return from_ns(ns, ev.timezone).replace(tzinfo=None)


def _comparison_rows(ev: Evaluation) -> Iterable[list[Any]]:
    for c in ev.comparisons:
        fig = c.figure
        yield [fig.kpi.id, fig.kpi.title, fig.where, fig.kpi.unit, c.baseline,
               c.baseline_from or None, c.baseline_note or None,
               c.target.value if c.target else None,
               c.target.direction.value if c.target else None, fig.value, c.change,
               c.change_pct, c.completeness, c.beyond_missing, c.mark.value, fig.reason]


def to_xlsx(ev: Evaluation) -> bytes:
    """Every table of the report as a typed sheet, plus the KPI values and definitions."""
    book = workbook()
    sheet(book, "summary", ("family", "kpi", "title", "where", "unit", "achieved", "target",
                            "direction", "mark"),
          ([fam.value, c.figure.kpi.id, c.figure.kpi.title, c.figure.where, c.figure.kpi.unit,
            c.figure.value, c.target.value if c.target else None,
            c.target.direction.value if c.target else None, c.mark.value]
           for fam, rows in ev.summary.items() for c in rows))
    sheet(book, "with_and_without", (
        "kpi", "title", "where", "unit", "baseline", "baseline_from", "baseline_source",
        "target", "direction", "achieved", "change", "change_pct", "completeness_pct",
        "beyond_missing_data", "mark", "reason"), _comparison_rows(ev))
    sheet(book, "usage", ("service", "uses", "uses_per_device", "peak_demand_ratio",
                          "availability_pct", "corner"),
          ([s.service, s.uses.value, s.per_device.value if s.per_device else None,
            s.peak.value if s.peak else None, ev.availability.value, s.corner.value]
           for s in ev.services))
    sheet(book, "weeks", ("service", "start", "end", "uses", "uses_per_device",
                          "availability_pct", "corner"),
          ([s.service, _local(w.start, ev), _local(w.end, ev), w.uses, w.per_device,
            w.availability, w.corner.value] for s in ev.services for w in s.weeks),
          date_columns=(2, 3))
    sheet(book, "limits", ("kpi", "where", "value", "unit", "regime", "limit", "averaging",
                           "allowed", "within", "indicative"),
          ([c.figure.kpi.id, c.figure.where, c.figure.value, c.figure.kpi.unit,
            c.limit.regime.value, c.limit.value, c.limit.averaging, c.limit.allowed, c.within,
            c.indicative] for c in ev.limits))
    sheet(book, "allowances", ("indicator", "regime", "where", "exceedances_left"),
          ([dict(a.dims).get("indicator"), dict(a.dims).get("regime"), a.where, a.value]
           for a in ev.allowances))
    sheet(book, "devices", ("gateway", "device", "registered", "kind", "service", "location",
                            "lat", "lon", "last_seen", "online_at_report"),
          ([d.gateway, d.id, d.entry is not None, d.entry.kind if d.entry else
            (d.kinds[0] if d.kinds else None), d.entry.service if d.entry else None,
            d.entry.location if d.entry else None, d.entry.lat if d.entry else None,
            d.entry.lon if d.entry else None,
            _local(d.last_seen_ns, ev) if d.last_seen_ns else None, d.online(ev.now)]
           for d in ev.devices), date_columns=(9,))
    sheet(book, "uptake", ("organisation", "solution", "date", "document"),
          ([u.organisation, u.solution, u.date, u.document] for u in ev.uptake))
    sheet(book, "activities", ("type", "actor", "date", "participants", "title"),
          ([a.type.value, a.actor.value, a.date, a.participants, a.title]
           for a in ev.activities))
    sheet(book, "dead_letters", ("reason", "count"), ev.dead_letters)
    kpi_sheets(book, ev.results, ev.definitions)
    return save(book)


def filename(ev: Evaluation, fmt: str) -> str:
    lo, hi = (from_ns(x, ev.timezone).date() for x in (ev.start, ev.end))
    return f"citypilot-evaluation-{ev.pilot.id}-{lo:%Y%m%d}-{hi:%Y%m%d}.{fmt}"


def cluster_title(cl: Cluster, lang: str = "en") -> str:
    _ = translations(lang).gettext
    return _("Cluster report: {pilots}").format(pilots=", ".join(
        p.name or p.id for p in cl.pilots))


def cluster_html(cl: Cluster, lang: str = "en") -> str:
    f = Formats(lang)
    return _env(lang).get_template("cluster.html").render(
        cl=cl, f=f, lang=lang, zip=zip, describe=describe, title=cluster_title(cl, lang),
        ids=", ".join(p.id for p in cl.pilots), definitions=KPIS,
        made=format_date(from_ns(cl.now).date(), "long", locale=lang))


def cluster_pdf(cl: Cluster, lang: str = "en") -> bytes:
    return _pdf(cluster_html(cl, lang), cluster_xlsx(cl), CLUSTER_XLSX_NAME, lang)


def cluster_xlsx(cl: Cluster) -> bytes:
    """The pilots, every compared value with its quotients (one row per pilot and value),
    and the KPI values and definitions."""
    book = workbook()
    sheet(book, "pilots", ("pilot", "name", "operator", "timezone", "population"),
          ([p.id, p.name, p.operator, p.timezone, p.population] for p in cl.pilots))
    sheet(book, "compared", ("kpi", "title", "where", "unit", "pilot", "value", "reason",
                             "per_device", "per_100000_inhabitants"),
          ([r.kpi.id, r.kpi.title, r.where, r.kpi.unit, p.id, c.value, c.reason,
            c.per_device, c.per_100k] for r in cl.rows
           for p, c in zip(cl.pilots, r.cells, strict=True)))
    kpi_sheets(book, cl.results)
    return save(book)


def cluster_filename(cl: Cluster, fmt: str) -> str:
    lo, hi = (from_ns(x, cl.timezone).date() for x in (cl.start, cl.end))
    return f"citypilot-cluster-{'-'.join(p.id for p in cl.pilots)}-{lo:%Y%m%d}-{hi:%Y%m%d}" \
        f".{fmt}"


__all__ = ["NS", "ReportError", "cluster_filename", "cluster_html", "cluster_pdf",
           "cluster_title", "cluster_xlsx", "filename", "language", "to_html", "to_pdf",
           "to_xlsx", "translations"]
