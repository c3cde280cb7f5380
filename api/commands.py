"""What the API package's commands share (`api/cli.py`, `api/reports/cli.py`,
`api/open/cli.py`, `api/kpis/rollups/cli.py`): option types, the settings loader the root
passes down, one-line failures, the catalogue and store openers, and where a command's file
goes. Only typer at module level: `--help` imports nothing else.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from api.options import CliOptions

if TYPE_CHECKING:
    from api.catalog import Catalog, Pilot
    from api.fleet import Fleet

Loader = Callable[[Path | None], CliOptions]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
PilotOpt = Annotated[str, typer.Option(help="pilot id")]
StartOpt = Annotated[str, typer.Option(help="RFC 3339 with offset, or a local date; inclusive")]
EndOpt = Annotated[str, typer.Option(help="RFC 3339 with offset, or a local date; exclusive")]
GrainOpt = Annotated[str, typer.Option(help="day, week or month (pilot's timezone), or "
                                       "period (the whole period)")]


def loader(ctx: typer.Context) -> Loader:
    load: Loader = ctx.obj
    return load


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"citypilot: {message}", err=True)
    return typer.Exit(code)


def open_catalog(options: CliOptions) -> Catalog:
    from api.catalog import Catalog, CatalogError

    try:
        return Catalog(options.api.catalog_url)
    except CatalogError as exc:
        raise fail(str(exc)) from None


def emit(data: bytes, output: Path | None) -> None:
    """A command's file: to stdout (no file or `-`), else written and named on stderr."""
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(data)
    else:
        output.write_bytes(data)
        typer.echo(f"wrote {output} ({len(data)} bytes)", err=True)


@contextlib.asynccontextmanager
async def registered(options: CliOptions, catalog: Catalog, pilot: str
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


def moment(text: str, tz: ZoneInfo, name: str) -> int:
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


def grain_of(text: str) -> str:
    if text not in ("day", "week", "month", "period"):
        raise fail("--grain: use day, week, month or period (the whole period)")
    return text


def to_json(value: object) -> str:
    import json

    return json.dumps(value, ensure_ascii=False, default=str)
