"""`citypilot rollup`: the rollup worker, once (cron, tests), for ever, or a rebuild.

Mounted by `api/cli.py`. Progress and the passes go to stderr; `--metrics-port` serves
`citypilot_rollup_lag_seconds` (seconds since the last finished pass) on `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.commands import Loader
from api.options import CliOptions
from ingest.cli import parse_duration

if TYPE_CHECKING:
    from api.kpis.rollups.worker import Pass, Worker

def mount(app: typer.Typer, load: Loader) -> None:
    @app.command("rollup")
    def rollup(
        config: Annotated[Path | None, typer.Option("--config", "-c", help="TOML config "
                                                    "file (or CITYPILOT_CONFIG)")] = None,
        once: Annotated[bool, typer.Option("--once", help="bring the rollups up to date "
                                           "and exit (cron, tests)")] = False,
        rebuild: Annotated[bool, typer.Option("--rebuild", help="recompute every hour with "
                                              "data from raw points, then exit")] = False,
        pilot: Annotated[list[str] | None, typer.Option(
            "--pilot", help="with --rebuild: only this pilot (repeatable)")] = None,
        since: Annotated[str | None, typer.Option(
            help="with --rebuild: only this far back, e.g. 90d (default: all history)")] = None,
        interval_s: Annotated[float, typer.Option(
            "--interval-s", min=1.0, help="seconds between passes")] = 60.0,
        metrics_port: Annotated[int, typer.Option(
            min=0, max=65535, help="serve /metrics on this port (0: off)")] = 0,
    ) -> None:
        """Keep the KPI rollups up to date: exact hourly summaries of raw points.

        Safe to run twice at once (a pass is idempotent). Without --once or --rebuild it
        runs until interrupted, a pass every --interval-s."""
        try:
            since_s = parse_duration(since) if since is not None else None
        except ValueError as exc:
            typer.echo(f"citypilot: --since: {exc}", err=True)
            raise typer.Exit(2) from None
        if (pilot or since) and not rebuild:
            typer.echo("citypilot: --pilot and --since go with --rebuild", err=True)
            raise typer.Exit(2)
        options = load(config)
        asyncio.run(_run(options, once=once, rebuild=rebuild, pilots=pilot or None,
                         since_s=since_s, interval_s=interval_s, metrics_port=metrics_port))


def _progress(pilot: str, done: int, total: int) -> None:
    sys.stderr.write(f"\rrollup rebuild: pilot {pilot}: {done}/{total} hours")
    if done >= total:
        sys.stderr.write("\n")


@contextlib.asynccontextmanager
async def open_worker(store_url: str, catalog_url: str,
                      deadline_s: float) -> AsyncIterator[Worker]:
    """A rollup worker over the store at `store_url`, its rollup namespace beside it, and the
    pilots' time zones from the catalogue (shared by this command and `up --demo`)."""
    from api.app import zones
    from api.catalog import Catalog
    from api.kpis.rollups.worker import Worker
    from ingest.stores import open_reader, open_store
    from ingest.stores.naming import rollup_url

    catalog = Catalog(catalog_url)
    try:
        async with open_reader(store_url, deadline_s=deadline_s) as raw, \
                open_store(rollup_url(store_url), deadline_s=deadline_s,
                           mark_dirty=False) as out, \
                open_reader(rollup_url(store_url), deadline_s=deadline_s) as rollups:
            yield Worker(raw, out, rollups, zones(catalog))
    finally:
        catalog.close()


async def _run(options: CliOptions, *, once: bool, rebuild: bool, pilots: list[str] | None,
               since_s: float | None, interval_s: float, metrics_port: int) -> None:
    async with open_worker(options.api.store_url, options.api.catalog_url,
                           options.api.store_timeout_s) as worker:
        if rebuild:
            since_ns = time.time_ns() - round(since_s * 1e9) if since_s else None
            done = await worker.rebuild(pilots, since_ns, _progress)
            _report(done, "rebuilt")
            return
        if once:
            _report(await worker.run_once(), "pass")
            return
        lag = _serve_lag(metrics_port, worker)

        def on_pass(p: Pass) -> None:
            _report(p, "pass")
        try:
            await worker.run_forever(interval_s, on_pass)
        finally:
            if lag is not None:
                lag.cancel()


def _report(p: Pass, what: str) -> None:
    until = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(p.state.complete_until / 1e9))
    sys.stderr.write(f"rollup {what}: {p.slots} hours and {p.days} days recomputed, "
                     f"complete until {until}\n")


def _serve_lag(port: int, worker: Worker) -> asyncio.Task[None] | None:
    if not port:
        return None
    from api.kpis.rollups.metrics import lag_app
    from ingest.collector.metrics import serve

    return asyncio.get_running_loop().create_task(
        serve(lag_app(worker), "0.0.0.0", port), name="rollup-metrics")
