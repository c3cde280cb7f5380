"""`citypilot collect`, `deadletters` and `sources`: the data path's own commands.

The composition root mounts them with `mount(app, load)`, where `load(config_path)` turns the
settings into a `Wiring` (the collector to run, the store to read, the replay to run, the
configured sources): this package reads no environment and never imports the composition
root. Only typer and orjson load at import; the rest loads inside the commands. Data goes to
stdout (`--json` where a script wants it), notes to stderr.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import orjson
import typer

if TYPE_CHECKING:
    from ingest.stores.base import Reader

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)", exists=False)]

_UNITS = {"": 1.0, "ms": 0.001, "s": 1.0, "m": 60.0, "h": 3_600.0, "d": 86_400.0,
          "w": 604_800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h|d|w)?\s*")


def parse_duration(text: str) -> float:
    """Seconds from `90`, `10s`, `5m`, `2h`, `30d`, `1w` or `1.5m`."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration like 90, 10s, 5m, 2h or 30d")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


class ReplayReport(Protocol):
    examined: int
    stored_points: int
    recovered: int
    still_failing: Counter[str]


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the composition root hands these commands, built from the settings."""

    mqtt_url: str  # the main broker (of sources without one of their own)
    sources: list[dict[str, Any]]  # the config file's [[sources]] tables
    collect: Callable[[], Coroutine[Any, Any, None]]  # run a collector until signalled
    reader: Callable[[], Reader]
    replay: Callable[..., Coroutine[Any, Any, ReplayReport]]


Loader = Callable[[Path | None], Wiring]

deadletters_app = typer.Typer(no_args_is_help=True, help="Inspect rejected messages.")
sources_app = typer.Typer(no_args_is_help=True, help="Other gateway formats: the config "
                          "file's sources.")


def _load(ctx: typer.Context) -> Loader:
    load: Loader = ctx.obj
    return load


def mount(app: typer.Typer, load: Loader) -> None:
    """Add `collect`, `deadletters` and `sources` to the root command."""

    @app.command()
    def collect(config: ConfigOpt = None) -> None:
        """Run a collector: subscribe, decode, store; acknowledge only what is durable."""
        from ingest.spool import SpoolError

        wiring = load(config)
        try:
            asyncio.run(wiring.collect())
        except* SpoolError as group:
            typer.echo(f"citypilot: {group.exceptions[0]}", err=True)
            raise typer.Exit(1) from None

    # The sub-commands find `load` in their context (Click passes `obj` down).
    app.add_typer(deadletters_app, name="deadletters", context_settings={"obj": load})
    app.add_typer(sources_app, name="sources", context_settings={"obj": load})


@deadletters_app.command("list")
def deadletters_list(
    ctx: typer.Context,
    config: ConfigOpt = None,
    reason: Annotated[str | None, typer.Option(help="only this reason")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000, help="newest N")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Show kept dead letters, newest first: time, reason, topic, detail."""
    wiring = _load(ctx)(config)

    async def fetch() -> list[dict[str, object]]:
        async with wiring.reader() as st:
            rows = await st.dead_letters(reason=reason, limit=limit)
        return [{"ts": r.ts, "reason": r.reason, "topic": r.topic, "detail": r.detail,
                 "payload": r.payload, "payload_encoding": r.payload_encoding} for r in rows]

    rows = asyncio.run(fetch())
    for row in rows:
        if as_json:
            sys.stdout.write(orjson.dumps(row).decode() + "\n")
        else:
            when = datetime.fromtimestamp(int(row["ts"]) / 1e9, UTC)  # type: ignore[call-overload]
            sys.stdout.write(f"{when:%Y-%m-%d %H:%M:%S} {row['reason']:<16} {row['topic']}  "
                             f"{row['detail']}\n")
    typer.echo(f"{len(rows)} dead letter(s)", err=True)


@deadletters_app.command("replay")
def deadletters_replay(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="replay dead letters of this reason")],
    source: Annotated[str | None, typer.Option(help="only this configured source")] = None,
    since: Annotated[str | None, typer.Option(help="only newer ones: RFC 3339 or 2h/7d ago")
                     ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 100_000,
    config: ConfigOpt = None,
) -> None:
    """Decode kept dead letters again (after fixing a mapping or codec); store what decodes."""
    wiring = _load(ctx)(config)
    since_ns = None
    if since:
        try:
            since_ns = int(datetime.fromisoformat(since).timestamp() * 1e9)
        except ValueError:
            try:
                since_ns = time.time_ns() - int(parse_duration(since) * 1e9)
            except ValueError:
                typer.echo(f"citypilot: --since {since!r}: give RFC 3339 or a duration like "
                           "2h", err=True)
                raise typer.Exit(2) from None
    report = asyncio.run(wiring.replay(reason=reason, source=source, since_ns=since_ns,
                                       limit=limit))
    sys.stdout.write(orjson.dumps({
        "examined": report.examined, "recovered": report.recovered,
        "stored_points": report.stored_points,
        "still_failing": dict(report.still_failing)}).decode() + "\n")
    typer.echo(f"replayed {report.examined} dead letter(s): {report.recovered} now decode "
               f"({report.stored_points} points stored), "
               f"{sum(report.still_failing.values())} still fail", err=True)


@sources_app.command("check")
def sources_check(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="a sample payload, as it arrives on the topic",
                                         exists=True, dir_okay=False)],
    fmt: Annotated[str | None, typer.Option("--format", help="citypilot, ttn-v3, chirpstack-v4,"
                                            " zigbee2mqtt, tasmota, influx-lp")] = None,
    source: Annotated[str | None, typer.Option(help="decode as this configured source "
                                               "(its mappings and codec)")] = None,
    topic: Annotated[str | None, typer.Option(help="the topic it arrives on (a typical one "
                                              "of the format by default)")] = None,
    timezone: Annotated[str | None, typer.Option(help="zone for clocks without one")] = None,
    config: ConfigOpt = None,
) -> None:
    """Decode a sample offline: the points it would store, or the dead-letter reason."""
    from ingest.decode.preview import SAMPLE_TOPICS, preview
    from ingest.decode.sources import SourceConfigError, adhoc_source, decoder_for, load_sources

    wiring = _load(ctx)(config)
    try:
        if source is not None:
            chosen = [x for x in load_sources(wiring.sources) if x.name == source]
            if not chosen:
                raise SourceConfigError(f"--source: no [[sources]] entry named {source!r}")
            src = chosen[0]
        elif fmt is not None:
            src = adhoc_source(fmt, timezone)
        else:
            raise SourceConfigError("give --format F or --source NAME")
        decoder = decoder_for(src)
    except SourceConfigError as exc:
        typer.echo(f"citypilot: {exc}", err=True)
        raise typer.Exit(2) from None
    the_topic = topic or SAMPLE_TOPICS.get(src.format.value, src.topic)
    for line in preview(decoder, the_topic, file.read_bytes(), time.time_ns()):
        sys.stdout.write(line + "\n")


@sources_app.command("list")
def sources_list(ctx: typer.Context, config: ConfigOpt = None,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The configured sources: name, format, pilot, topic filter, broker."""
    from ingest.decode.sources import load_sources
    from ingest.mqtt.options import redact_url

    wiring = _load(ctx)(config)
    rows = [{"name": x.name, "format": x.format.value, "pilot": x.pilot, "topic": x.topic,
             "broker": redact_url(x.mqtt_url or wiring.mqtt_url)}
            for x in load_sources(wiring.sources)]
    for row in rows:
        sys.stdout.write(orjson.dumps(row).decode() + "\n" if as_json else
                         "{name:<20} {format:<14} {pilot:<16} {topic:<32} {broker}\n"
                         .format(**row))
    typer.echo(f"{len(rows)} source(s)", err=True)
