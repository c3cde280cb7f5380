"""`citypilot inventory export|schema`: the infrastructure inventory, the tender annex
(`api/open/annex.py`). Mounted by `api/cli.py`; only typer at module level."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.commands import (
    ConfigOpt,
    PilotOpt,
    emit,
    fail,
    loader,
    open_catalog,
    registered,
    to_json,
)

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
    options = loader(ctx)(config)
    catalog = open_catalog(options)

    async def run() -> bytes:
        async with registered(options, catalog, pilot) as (fleet, entry):
            data, _ = await export(fleet, Uptime(fleet, options.api.kpi), entry,
                                   InventoryFormat(fmt), options.api.public_url)
            return data

    try:
        data = asyncio.run(run())
    except StoreError as exc:
        raise fail(f"store: {exc}", 1) from None
    finally:
        catalog.close()
    emit(data, output)


@inventory_app.command("schema")
def inventory_schema() -> None:
    """inventory.schema.json: the Frictionless Table Schema of `inventory export`'s CSV."""
    from api.open.annex import table_schema

    sys.stdout.write(to_json(table_schema()) + "\n")
