"""`citypilot api`, `kpi`, `apikey` and `registry`, and the mount of the API package's other
commands (`rollup`: api/kpis/rollups/cli.py, `report`: api/reports/cli.py, `inventory`:
api/open/cli.py; what they share is in api/commands.py).

The composition root mounts them with `mount(app, load)`, where `load(config_path)` turns
settings into `CliOptions`: this package reads no environment. Only typer is imported at
module level; FastAPI, the stores and openpyxl load inside the commands that use them. Data
goes to stdout (a new key, exports, `--json`), notes and progress to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from api.commands import (
    ConfigOpt,
    EndOpt,
    GrainOpt,
    JsonOpt,
    Loader,
    PilotOpt,
    StartOpt,
    emit,
    fail,
    grain_of,
    loader,
    moment,
    open_catalog,
    to_json,
)
from api.kpis.rollups import cli as rollups_cli
from api.open.cli import inventory_app
from api.options import CliOptions
from api.reports.cli import report_app

if TYPE_CHECKING:
    from api.catalog import Pilot
    from api.kpis.service import KpiResult

log = logging.getLogger(__name__)


def mount(app: typer.Typer, load: Loader) -> None:
    """Add `api`, `rollup`, `kpi`, `apikey`, `registry`, `report` and `inventory` to the root
    command."""

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
    catalog = open_catalog(options)

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

            return await compute_many(store, pilot, ids, moment(start, tz, "start"),
                                      moment(end, tz, "end"), Grain(grain),
                                      options=options.api.kpi, progress=tick)

    try:
        return asyncio.run(run())
    except KpiRequestError as exc:
        raise fail(f"{', '.join('--' + f for f in exc.fields)}: {exc}") from None
    except StoreError as exc:
        raise fail(f"store: {exc}", 1) from None
    finally:
        catalog.close()


kpi_app = typer.Typer(no_args_is_help=True, help="KPI definitions, values and exports.")


@kpi_app.command("list")
def kpi_list(as_json: JsonOpt = False) -> None:
    """Every KPI: id, family, unit, title."""
    from api.exports import DEFINITION_COLUMNS, definition_row
    from api.kpis.definitions import KPIS

    for k in KPIS:
        if as_json:
            sys.stdout.write(to_json(dict(zip(DEFINITION_COLUMNS, definition_row(k),
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

    [result] = _results(loader(ctx)(config), pilot, start, end, grain_of(grain), [kpi_id], False)
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
    results = _results(loader(ctx)(config), pilot, start, end, grain_of(grain),
                       only or [k.id for k in KPIS], True)
    if fmt == "xlsx":
        data = to_xlsx(results)
    elif fmt == "csv":
        data = to_csv(results).encode()
    else:
        from api.exports import to_schema

        data = "\n".join(to_schema(r).model_dump_json() for r in results).encode() + b"\n"
    emit(data, output)



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
    catalog = open_catalog(loader(ctx)(config))
    record, key = catalog.create_key(name, Role(role), pilots=frozenset(pilot)
                                     if pilot else None, expires_ns=_expiry(expires))
    catalog.close()
    sys.stdout.write(to_json({"key": key, "id": record.id}) + "\n" if as_json else key + "\n")
    scope = ", ".join(sorted(record.pilots)) if record.pilots else "all pilots"
    typer.echo(f"created {record.role.value} key {record.id} for {name!r} ({scope}); "
               "it is shown only now: store it safely", err=True)


@apikey_app.command("list")
def list_(ctx: typer.Context, config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """Every key's id, name, role, pilots, expiry and state (never the key)."""
    import time as clock

    from api.kpis.periods import from_ns

    catalog = open_catalog(loader(ctx)(config))
    now = clock.time_ns()
    for k in catalog.keys():
        row = {"id": k.id, "name": k.name, "role": k.role.value,
               "pilots": sorted(k.pilots) if k.pilots is not None else None,
               "expires": from_ns(k.expires_ns).isoformat() if k.expires_ns else None,
               "state": k.state(now).value}
        sys.stdout.write(to_json(row) + "\n" if as_json else
                         f"{k.id}  {row['state']:<8} {row['role']:<9} "
                         f"{','.join(row['pilots'] or ['*']):<20} {k.name}\n")
    catalog.close()


@apikey_app.command("revoke")
def revoke(ctx: typer.Context,
           key_id: Annotated[str, typer.Argument(help="the key's id (apikey list)")],
           config: ConfigOpt = None) -> None:
    """Revoke a key: the API refuses it from the next request on."""
    catalog = open_catalog(loader(ctx)(config))
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
    catalog = open_catalog(loader(ctx)(config))
    loaded = catalog.load(document)
    catalog.close()
    typer.echo(f"loaded {len(loaded)} pilot(s): {', '.join(loaded)}", err=True)


@registry_app.command("show")
def show(ctx: typer.Context,
         pilot: Annotated[str | None, typer.Option(help="only this pilot")] = None,
         config: ConfigOpt = None, as_json: JsonOpt = False) -> None:
    """The registry as YAML (or JSON), loadable again with `registry load`."""
    import yaml

    catalog = open_catalog(loader(ctx)(config))
    pilots = [p for p in catalog.pilots() if pilot is None or p.id == pilot]
    catalog.close()
    doc = {"pilots": [p.model_dump(mode="json", exclude_none=True) for p in pilots]}
    sys.stdout.write(to_json(doc) + "\n" if as_json else
                     yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    typer.echo(f"{len(pilots)} pilot(s)", err=True)



