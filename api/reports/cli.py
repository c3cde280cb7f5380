"""`citypilot report evaluation` and `citypilot report cluster` (`api/reports/`), with progress
on stderr. Mounted by `api/cli.py`; only typer at module level."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from api.commands import (
    ConfigOpt,
    PilotOpt,
    emit,
    fail,
    loader,
    moment,
    open_catalog,
    registered,
)

report_app = typer.Typer(no_args_is_help=True, help="Reports built from the KPIs.")
LangOpt = Annotated[str | None, typer.Option(
    help="en it es fr el pt hr sl (default: the (first) pilot's, then en)")]
FormatOpt = Annotated[str, typer.Option("--format", help="pdf, html or xlsx")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="file (default: a name from "
                                             "pilots and period)")]
PeriodOpt = Annotated[str, typer.Option(help="START/END: local dates or RFC 3339, end "
                                        "excluded (2026-01-01/2026-07-01)")]


def _period(text: str, tz: ZoneInfo, name: str) -> tuple[int, int]:
    start, sep, end = text.partition("/")
    if not sep:
        raise fail(f"--{name}: {text!r} is not START/END (2026-01-01/2026-07-01)")
    lo, hi = moment(start, tz, name), moment(end, tz, name)
    if hi <= lo:
        raise fail(f"--{name}: the end must be after the start")
    return lo, hi


def _make(ctx: typer.Context, config: Path | None, fmt: str, out: Path,
          run: Callable[[Any, Any], Coroutine[Any, Any, bytes]]) -> None:
    """Check the format, open the catalogue, `run(options, catalog)` and write its bytes."""
    from api.kpis.service import KpiRequestError
    from ingest.stores.base import StoreError

    if fmt not in ("pdf", "html", "xlsx"):
        raise fail("--format: use pdf, html or xlsx")
    options = loader(ctx)(config)
    catalog = open_catalog(options)
    try:
        data = asyncio.run(run(options, catalog))
    except KpiRequestError as exc:
        raise fail(f"--period: {exc}") from None
    except StoreError as exc:
        raise fail(f"store: {exc}", 1) from None
    finally:
        catalog.close()
    emit(data, out)


def _language(lang: str | None, registered: str | None) -> str:
    from api.reports import render

    try:
        return render.language(lang, registered)
    except render.ReportError as exc:
        raise fail(f"--lang: {exc}") from None


def _progress(what: str) -> None:
    typer.echo(what, err=True)


@report_app.command("evaluation")
def evaluation(ctx: typer.Context, pilot: PilotOpt, period: PeriodOpt,
               baseline: Annotated[str | None, typer.Option(
                   help="START/END of a baseline period (registry baselines win)")] = None,
               lang: LangOpt = None, fmt: FormatOpt = "pdf", out: OutOpt = None,
               config: ConfigOpt = None) -> None:
    """The pilot evaluation report, with progress on stderr."""
    import time as clock

    from api.kpis.service import timezone_of
    from api.reports import render
    from api.reports.evaluation import build

    async def run(options: Any, catalog: Any) -> bytes:
        async with registered(options, catalog, pilot) as (fleet, entry):
            language = _language(lang, entry.language)
            tz = timezone_of(entry)
            lo, hi = _period(period, tz, "period")
            base = _period(baseline, tz, "baseline") if baseline else None
            ev = await build(fleet.store, fleet, entry, lo, hi, base, options=options.api.kpi,
                             now_ns=clock.time_ns(), progress=_progress)
        _progress(f"rendering {fmt}")
        if fmt == "html":
            return render.to_html(ev, language).encode()
        return render.to_pdf(ev, language) if fmt == "pdf" else render.to_xlsx(ev)

    _make(ctx, config, fmt, out or Path(f"citypilot-evaluation-{pilot}.{fmt}"), run)


@report_app.command("cluster")
def cluster(ctx: typer.Context,
            pilots: Annotated[str, typer.Option(help="the pilots to compare, comma-separated "
                                                "(a,b,c)")],
            period: PeriodOpt, lang: LangOpt = None, fmt: FormatOpt = "pdf",
            out: OutOpt = None, config: ConfigOpt = None) -> None:
    """Pilots compared on the same KPIs, per device and per 100,000 inhabitants; the period's
    dates are read in the first pilot's time zone."""
    import time as clock

    from api.fleet import Fleet
    from api.kpis.service import timezone_of
    from api.reports import cluster as clusters
    from api.reports import render
    from ingest.stores import open_reader

    ids = [p.strip() for p in pilots.split(",") if p.strip()]
    if not ids or len(set(ids)) != len(ids):
        raise fail("--pilots: name each pilot once (a,b,c)")

    async def run(options: Any, catalog: Any) -> bytes:
        async with open_reader(options.api.store_url) as store:
            fleet = Fleet(store, catalog, default_interval_s=options.api.kpi.default_interval_s)
            entries = []
            for pilot_id in ids:
                entry = await fleet.pilot(pilot_id)
                if entry is None:
                    raise fail(f"--pilots: no pilot {pilot_id!r} is registered or has sent "
                               "data")
                entries.append((entry, catalog.pilot(pilot_id) is not None))
            language = _language(lang, entries[0][0].language)
            lo, hi = _period(period, timezone_of(entries[0][0]), "period")
            cl = await clusters.build(store, entries, lo, hi, options=options.api.kpi,
                                      now_ns=clock.time_ns(), progress=_progress)
        _progress(f"rendering {fmt}")
        if fmt == "html":
            return render.cluster_html(cl, language).encode()
        return render.cluster_pdf(cl, language) if fmt == "pdf" else render.cluster_xlsx(cl)

    _make(ctx, config, fmt, out or Path(f"citypilot-cluster-{'-'.join(ids)}.{fmt}"), run)
