"""The `citypilot` command: one entry point, sub-commands wired from the packages.

Heavy parts are imported inside the commands, so `citypilot gateway` on a Pi never loads
what it does not run. Data goes to stdout, notes, progress and logs to stderr. A bad setting
is one line naming the key, exit code 2.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import orjson
import typer

from citypilot import logs
from citypilot.settings import Settings, SettingsError, load

app = typer.Typer(name="citypilot", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,  # locals may hold credentials
                  help="Smart City pilot backend: MQTT gateways -> store -> KPIs.")
deadletters_app = typer.Typer(no_args_is_help=True, help="Inspect rejected messages.")
app.add_typer(deadletters_app, name="deadletters")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)", exists=False)]


def settings(config: Path | None = None, **overrides: object) -> Settings:
    try:
        s = load(config, **overrides)
    except SettingsError as exc:
        typer.echo(f"citypilot: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(s.log_level, s.log_format)
    return s


@app.command()
def collect(config: ConfigOpt = None) -> None:
    """Run a collector: subscribe, decode, store; acknowledge only what is durable."""
    s = settings(config)
    from citypilot.wiring import build_collector, run_until_signalled
    from ingest.spool import SpoolError

    try:
        asyncio.run(run_until_signalled(build_collector(s)))
    except* SpoolError as group:
        typer.echo(f"citypilot: {group.exceptions[0]}", err=True)
        raise typer.Exit(1) from None


@deadletters_app.command("list")
def deadletters_list(
    config: ConfigOpt = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="newest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show kept dead letters, newest first: time, reason, topic, detail."""
    s = settings(config)
    from citypilot.wiring import store


    async def fetch() -> list[dict[str, object]]:
        async with store(s) as st:
            rows = await st.dead_letters(reason=reason, limit=limit)
        return [{"ts": r.ts, "reason": r.reason, "topic": r.topic, "detail": r.detail,
                 "payload": r.payload} for r in rows]

    rows = asyncio.run(fetch())
    for row in rows:
        if as_json:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        else:
            from datetime import UTC, datetime

            when = datetime.fromtimestamp(int(row["ts"]) / 1e9, UTC)  # type: ignore[call-overload]
            sys.stdout.write(f"{when:%Y-%m-%d %H:%M:%S} {row['reason']:<16} {row['topic']}  "
                             f"{row['detail']}\n")
    typer.echo(f"{len(rows)} dead letter(s)", err=True)


def main() -> None:
    app()
