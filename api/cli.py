"""`citypilot api`, `kpi`, `apikey`, `registry` and `inventory`: the API package's commands.

The composition root mounts them with `mount(app, load)`, where `load(config_path)` turns
settings into `CliOptions`: this package reads no environment. Only typer is imported at
module level; FastAPI, the stores and openpyxl load inside the commands that use them. Data
goes to stdout (a new key, exports, `--json`), notes and progress to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

import typer

from api.kpis.rollups import cli as rollups_cli
from api.options import CliOptions

if TYPE_CHECKING:
    from api.catalog import Catalog, Pilot
    from api.fleet import Fleet
    from api.kpis.service import KpiResult

log = logging.getLogger(__name__)
Loader = Callable[[Path | None], CliOptions]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _load(ctx: typer.Context) -> Loader:
    load: Loader = ctx.obj
    return load


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"citypilot: {message}", err=True)
    return typer.Exit(code)


def _catalog(options: CliOptions) -> Catalog:
    from api.catalog import Catalog, CatalogError

    try:
        return Catalog(options.api.catalog_url)
    except CatalogError as exc:
        raise fail(str(exc)) from None


def _emit(data: bytes, output: Path | None) -> None:
    """A command's file: to stdout (no file or `-`), else written and named on stderr."""
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        typer.echo(f"wrote {output} ({len(data)} bytes)", err=True)


@contextlib.asynccontextmanager
async def _registered(options: CliOptions, catalog: Catalog, pilot: str
                      ) -> AsyncIterator[tuple[Fleet, Pilot]]:
    """The fleet over an opened store and the pilot's entry (registered or seen in data),
    or exit 2."""
    from api.fleet import Fleet
    from ingest.stores import open_reader

    async with open_reader(options.api.store_url) as store:
        fleet = Fleet(store, catalog, default_interval_s=options.api.kpi.default_interval_s)
        entry = await fleet.pilot(pilot)
        if entry is None:
            raise fail(f"no pilot {pilot!r} is registered or has sent data")
        yield fleet, entry



def mount(app: typer.Typer, load: Loader) -> None:
    """Add `api`, `kpi`, `apikey`, `registry` and `report` to the root command."""

    @app.command("api")
    def serve(config: ConfigOpt = None,
              host: Annotated[str | None, typer.Option(help="bind address")] = None,
              port: Annotated[int | None, typer.Option(min=1, max=65535)] = None) -> None:
        """Serve the HTTP API (OpenAPI at /docs) until interrupted."""
        import uvicorn

        from api.app import create_app

        options = load(config)
        bind, at = host or options.host, port or options.port
        typer.echo(f"citypilot API on http://{bind}:{at} (docs: /docs)", err=True)
        # log_config=None: keep the root command's log format instead of uvicorn's own.
        uvicorn.run(create_app(options.api), host=bind, port=at, log_config=None,
                    access_log=False)

    rollups_cli.mount(app, load)
    # The sub-commands find `load` in their context (Click passes `obj` down).
    for sub, name in ((kpi_app, "kpi"), (apikey_app, "apikey"), (registry_app, "registry"),
                      (report_app, "report"), (inventory_app, "inventory")):
        app.add_typer(sub, name=name, context_settings={"obj": load})


# -- kpi ------------------------------------------------------------------------------------

def _moment(text: str, tz: ZoneInfo, name: str) -> int:
    """RFC 3339 with an offset, or a bare date meaning local midnight in the pilot's zone."""
    from api.kpis.periods import to_ns

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise fail(f"--{name}: {text!r} is not RFC 3339 (2024-01-15T00:00:00+01:00) or a "
                   "date (2024-01-15)") from None
    if moment.tzinfo is None:
        if len(text) > 10:
            raise fail(f"--{name}: {text!r} needs a UTC offset, or give a bare date")
        moment = datetime.combine(moment.date(), time(0), tzinfo=tz)
    return to_ns(moment)


def _results(options: CliOptions, pilot_id: str, start: str, end: str, grain: str,
             ids: list[str], progress: bool) -> list[KpiResult]:
    from api.fleet import Fleet
    from api.kpis.definitions import BY_ID
    from api.kpis.periods import Grain
    from api.kpis.service import KpiRequestError, compute_many, timezone_of
    from ingest.stores import open_reader
    from ingest.stores.base import StoreError

    unknown = [k for k in ids if k not in BY_ID]
    if unknown:
        raise fail(f"unknown KPI {unknown[0]!r}: `citypilot kpi list` shows them")
    catalog = _catalog(options)

    async def run() -> list[KpiResult]:
        async with open_reader(options.api.store_url) as store:
            pilot: Pilot | None = await Fleet(store, catalog).pilot(pilot_id)
            if pilot is None:
                raise fail(f"no pilot {pilot_id!r} is registered or has sent data")
            tz = timezone_of(pilot)
            done = [0]

            def tick(kpi: Any) -> None:
                done[0] += 1
                if progress:
                    typer.echo(f"[{done[0]}/{len(ids)}] {kpi.id}", err=True)

            return await compute_many(store, pilot, ids, _moment(start, tz, "start"),
                                      _moment(end, tz, "end"), Grain(grain),
                                      options=options.api.kpi, progress=tick)

    try:
        return asyncio.run(run())
    except KpiRequestError as exc:
        raise fail(f"{', '.join('--' + f for f in exc.fields)}: {exc}") from None
    except StoreError as exc:
        raise fail(f"store: {exc}", 1) from None
    finally:
        catalog.close()


PilotOpt = Annotated[str, typer.Option(help="pilot id")]
StartOpt = Annotated[str, typer.Option(help="RFC 3339 with offset, or a local date; inclusive")]
EndOpt = Annotated[str, typer.Option(help="RFC 3339 with offset, or a local date; exclusive")]
GrainOpt = Annotated[str, typer.Option(help="day, week or month (pilot's timezone), or "
                                       "period (the whole period)")]


kpi_app = typer.Typer(no_args_is_help=True, help="KPI definitions, values and exports.")


@kpi_app.command("list")
def kpi_list(as_json: JsonOpt = False) -> None:
    """Every KPI: id, family, unit, title."""
    from api.exports import DEFINITION_COLUMNS, definition_row
    from api.kpis.definitions import KPIS

    for k in KPIS:
        if as_json:
            sys.stdout.write(_json(dict(zip(DEFINITION_COLUMNS, definition_row(k),
                                            strict=True))) + "\n")
        else:
            sys.stdout.write(f"{k.id:<24} {k.family.value:<16} {k.unit:<12} {k.title}\n")
    typer.echo(f"{len(KPIS)} KPIs", err=True)


@kpi_app.command("show")
def kpi_show(ctx: typer.Context,
             kpi_id: Annotated[str, typer.Argument(help="a KPI id (kpi list)")],
             pilot: PilotOpt, start: StartOpt, end: EndOpt, grain: GrainOpt = "day",
             config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """One KPI's values per period for a pilot."""
    from api.exports import rows, to_schema

    [result] = _results(_load(ctx)(config), pilot, start, end, _grain(grain), [kpi_id], False)
    if as_json:
        sys.stdout.write(to_schema(result).model_dump_json() + "\n")
        return
    typer.echo(f"{result.kpi.title} [{result.kpi.unit}], {result.pilot}, "
               f"{result.timezone.key}", err=True)
    for row in rows([result]):
        dims = " ".join(f"{k}={row[k]}" for k in ("service", "kind", "gateway", "device")
                        if row[k])
        value = f"{row['value']:.6g}" if row["value"] is not None else f"- ({row['reason']})"
        sys.stdout.write(f"{row['start']}  {dims:<28} {value}\n")


@kpi_app.command("export")
def kpi_export(ctx: typer.Context, pilot: PilotOpt, start: StartOpt, end: EndOpt,
               grain: GrainOpt = "day",
               fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or json")
                              ] = "csv",
               output: Annotated[Path | None, typer.Option("--output", "-o",
                                                           help="file (stdout: -)")] = None,
               only: Annotated[list[str] | None, typer.Option(
                   "--kpi", help="only these KPIs (repeatable)")] = None,
               config: ConfigOpt = None) -> None:
    """All KPIs (or --kpi ...) for a pilot and period, with progress on stderr."""
    from api.exports import to_csv, to_xlsx
    from api.kpis.definitions import KPIS

    if fmt not in ("csv", "xlsx", "json"):
        raise fail("--format: use csv, xlsx or json")
    if fmt == "xlsx" and output is None and sys.stdout.isatty():
        raise fail("--format xlsx writes a binary file: give --output FILE")
    results = _results(_load(ctx)(config), pilot, start, end, _grain(grain),
                       only or [k.id for k in KPIS], True)
    if fmt == "xlsx":
        data = to_xlsx(results)
    elif fmt == "csv":
        data = to_csv(results).encode()
    else:
        from api.exports import to_schema

        data = "\n".join(to_schema(r).model_dump_json() for r in results).encode() + b"\n"
    _emit(data, output)



def _grain(text: str) -> str:
    if text not in ("day", "week", "month", "period"):
        raise fail("--grain: use day, week, month or period (the whole period)")
    return text


def _json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)


# -- apikey ---------------------------------------------------------------------------------

apikey_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")


@apikey_app.command("create")
def create(ctx: typer.Context,
           role: Annotated[str, typer.Option(help="viewer, operator or admin")],
           name: Annotated[str, typer.Option(help="who holds it, e.g. \"city of X\"")],
           pilot: Annotated[list[str] | None, typer.Option(
               "--pilot", help="limit to this pilot (repeatable)")] = None,
           expires: Annotated[str | None, typer.Option(
               help="RFC 3339 with offset, or a number of days (30d)")] = None,
           config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Create a key and print it once on stdout (it is stored only hashed)."""
    from api.catalog import Role
    from ingest.model import IDENT_PATTERN

    if role not in {r.value for r in Role}:
        raise fail("--role: use viewer, operator or admin")
    bad = [p for p in pilot or [] if not re.fullmatch(IDENT_PATTERN[1:-1], p)]
    if bad:
        raise fail(f"--pilot: {bad[0]!r} is not a pilot id ([A-Za-z0-9_-]{{1,64}})")
    catalog = _catalog(_load(ctx)(config))
    record, key = catalog.create_key(name, Role(role), pilots=frozenset(pilot)
                                     if pilot else None, expires_ns=_expiry(expires))
    catalog.close()
    sys.stdout.write(_json({"key": key, "id": record.id}) + "\n" if as_json else key + "\n")
    scope = ", ".join(sorted(record.pilots)) if record.pilots else "all pilots"
    typer.echo(f"created {record.role.value} key {record.id} for {name!r} ({scope}); "
               "it is shown only now: store it safely", err=True)


@apikey_app.command("list")
def list_(ctx: typer.Context, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every key's id, name, role, pilots, expiry and state (never the key)."""
    import time as clock

    from api.kpis.periods import from_ns

    catalog = _catalog(_load(ctx)(config))
    now = clock.time_ns()
    for k in catalog.keys():
        row = {"id": k.id, "name": k.name, "role": k.role.value,
               "pilots": sorted(k.pilots) if k.pilots is not None else None,
               "expires": from_ns(k.expires_ns).isoformat() if k.expires_ns else None,
               "state": k.state(now).value}
        sys.stdout.write(_json(row) + "\n" if as_json else
                         f"{k.id}  {row['state']:<8} {row['role']:<9} "
                         f"{','.join(row['pilots'] or ['*']):<20} {k.name}\n")
    catalog.close()


@apikey_app.command("revoke")
def revoke(ctx: typer.Context,
           key_id: Annotated[str, typer.Argument(help="the key's id (apikey list)")],
           config: ConfigOpt = None) -> None:
    """Revoke a key: the API refuses it from the next request on."""
    catalog = _catalog(_load(ctx)(config))
    done = catalog.revoke(key_id)
    catalog.close()
    if not done:
        raise fail(f"no active key {key_id!r}", 1)
    typer.echo(f"revoked {key_id}", err=True)



def _expiry(text: str | None) -> int | None:
    import time as clock

    from api.kpis.periods import to_ns

    if text is None:
        return None
    if text.endswith("d") and text[:-1].isdigit():
        return clock.time_ns() + int(text[:-1]) * 86400 * 10**9
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise fail(f"--expires: {text!r} is not RFC 3339 with an offset or a number of days")
    return to_ns(moment)


# -- registry -------------------------------------------------------------------------------

registry_app = typer.Typer(no_args_is_help=True, help="The pilot registry (catalogue).")


@registry_app.command("load")
def load_file(ctx: typer.Context,
              file: Annotated[Path, typer.Argument(help="TOML or YAML registry",
                                                   exists=True, dir_okay=False)],
              config: ConfigOpt = None) -> None:
    """Add or replace the pilots of FILE (other pilots stay)."""
    from api.catalog import RegistryError, parse_registry

    try:
        document = parse_registry(file.read_text(), file.suffix)
    except RegistryError as exc:
        raise fail(f"{file}: {exc}") from None
    catalog = _catalog(_load(ctx)(config))
    loaded = catalog.load(document)
    catalog.close()
    typer.echo(f"loaded {len(loaded)} pilot(s): {', '.join(loaded)}", err=True)


@registry_app.command("show")
def show(ctx: typer.Context,
         pilot: Annotated[str | None, typer.Option(help="only this pilot")] = None,
         config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The registry as YAML (or JSON), loadable again with `registry load`."""
    import yaml

    catalog = _catalog(_load(ctx)(config))
    pilots = [p for p in catalog.pilots() if pilot is None or p.id == pilot]
    catalog.close()
    doc = {"pilots": [p.model_dump(mode="json", exclude_none=True) for p in pilots]}
    sys.stdout.write(_json(doc) + "\n" if as_json else
                     yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    typer.echo(f"{len(pilots)} pilot(s)", err=True)



# -- report ---------------------------------------------------------------------------------

report_app = typer.Typer(no_args_is_help=True, help="Reports built from the KPIs.")
PeriodOpt = Annotated[str, typer.Option(help="START/END: local dates or RFC 3339, end "
                                        "excluded (2026-01-01/2026-07-01)")]


def _period(text: str, tz: ZoneInfo, name: str) -> tuple[int, int]:
    start, sep, end = text.partition("/")
    if not sep:
        raise fail(f"--{name}: {text!r} is not START/END (2026-01-01/2026-07-01)")
    lo, hi = _moment(start, tz, name), _moment(end, tz, name)
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
    options = _load(ctx)(config)
    catalog = _catalog(options)

    async def run() -> bytes:
        async with _registered(options, catalog, pilot) as (fleet, entry):
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
    _emit(data, out or Path(f"citypilot-evaluation-{pilot}.{fmt}"))


# -- inventory ------------------------------------------------------------------------------

inventory_app = typer.Typer(no_args_is_help=True, help="The infrastructure inventory (the "
                            "tender annex) and its Table Schema.")


@inventory_app.command("export")
def inventory_export(
        ctx: typer.Context, pilot: PilotOpt,
        fmt: Annotated[str, typer.Option("--format", help="csv, xlsx or geojson")] = "csv",
        output: Annotated[Path | None, typer.Option("--output", "-o",
                                                    help="file (stdout: -)")] = None,
        config: ConfigOpt = None) -> None:
    """Every device of a pilot with what is known of it (inventory.schema.json describes
    the columns: `citypilot inventory schema`)."""
    from api.open.annex import InventoryFormat, export
    from api.open.inventory import Uptime
    from ingest.stores.base import StoreError

    if fmt not in {f.value for f in InventoryFormat}:
        raise fail("--format: use csv, xlsx or geojson")
    if fmt == "xlsx" and output is None and sys.stdout.isatty():
        raise fail("--format xlsx writes a binary file: give --output FILE")
    options = _load(ctx)(config)
    catalog = _catalog(options)

    async def run() -> bytes:
        async with _registered(options, catalog, pilot) as (fleet, entry):
            data, _ = await export(fleet, Uptime(fleet, options.api.kpi), entry,
                                   InventoryFormat(fmt), options.api.public_url)
            return data

    try:
        data = asyncio.run(run())
    except StoreError as exc:
        raise fail(f"store: {exc}", 1) from None
    finally:
        catalog.close()
    _emit(data, output)


@inventory_app.command("schema")
def inventory_schema() -> None:
    """inventory.schema.json: the Frictionless Table Schema of `inventory export`'s CSV."""
    from api.open.annex import table_schema

    sys.stdout.write(_json(table_schema()) + "\n")
