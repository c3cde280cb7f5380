"""`citypilot report evaluation`: the pilot evaluation report (`api/reports/`), with progress
on stderr. Mounted by `api/cli.py`; only typer at module level."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated
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


@report_app.command("evaluation")
def evaluation(ctx: typer.Context, pilot: PilotOpt, period: PeriodOpt,
               baseline: Annotated[str | None, typer.Option(
                   help="START/END of a baseline period (registry baselines win)")] = None,
               lang: Annotated[str | None, typer.Option(
                   help="en it es fr el pt hr sl (default: the pilot's, then en)")] = None,
               fmt: Annotated[str, typer.Option("--format", help="pdf, html or xlsx")
                              ] = "pdf",
               out: Annotated[Path | None, typer.Option("--out", "-o", help="file (default: "
                                                        "a name from pilot and period)")
                              ] = None,
               config: ConfigOpt = None) -> None:
    """The pilot evaluation report, with progress on stderr."""
    import time as clock

    from api.kpis.service import KpiRequestError, timezone_of
    from api.reports import render
    from api.reports.evaluation import build
    from ingest.stores.base import StoreError

    if fmt not in ("pdf", "html", "xlsx"):
        raise fail("--format: use pdf, html or xlsx")
    options = loader(ctx)(config)
    catalog = open_catalog(options)

    async def run() -> bytes:
        async with registered(options, catalog, pilot) as (fleet, entry):
            try:
                language = render.language(lang, entry.language)
            except render.ReportError as exc:
                raise fail(f"--lang: {exc}") from None
            tz = timezone_of(entry)
            lo, hi = _period(period, tz, "period")
            base = _period(baseline, tz, "baseline") if baseline else None
            ev = await build(fleet.store, fleet, entry, lo, hi, base, options=options.api.kpi,
                             now_ns=clock.time_ns(),
                             progress=lambda what: typer.echo(what, err=True))
        typer.echo(f"rendering {fmt}", err=True)
        if fmt == "html":
            return render.to_html(ev, language).encode()
        return render.to_pdf(ev, language) if fmt == "pdf" else render.to_xlsx(ev)

    try:
        data = asyncio.run(run())
    except KpiRequestError as exc:
        raise fail(f"--period: {exc}") from None
    except StoreError as exc:
        raise fail(f"store: {exc}", 1) from None
    finally:
        catalog.close()
    emit(data, out or Path(f"citypilot-evaluation-{pilot}.{fmt}"))
