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
from citypilot.settings import Settings, SettingsError, load, refuse_shipped_secrets

app = typer.Typer(name="citypilot", no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,  # locals may hold credentials
                  help="Smart City pilot backend: MQTT gateways -> store -> KPIs.")
deadletters_app = typer.Typer(no_args_is_help=True, help="Inspect rejected messages.")
app.add_typer(deadletters_app, name="deadletters")
sources_app = typer.Typer(no_args_is_help=True, help="Other gateway formats: the config "
                          "file's sources.")
app.add_typer(sources_app, name="sources")

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)", exists=False)]


def settings(config: Path | None = None, *, demo: bool = False, **overrides: object
             ) -> Settings:
    """Load the settings for a command, or exit 2 with one line naming the key. Outside the
    demo, a shipped default secret is refused."""
    try:
        s = load(config, **overrides)
        if not demo:
            refuse_shipped_secrets(s)
    except SettingsError as exc:
        typer.echo(f"citypilot: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    logs.configure(s.log_level, s.log_format)
    from ingest.sources import SourceConfigError, load_sources

    try:
        load_sources(s.sources)
    except SourceConfigError as exc:
        typer.echo(f"citypilot: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
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
    from citypilot.wiring import reader

    async def fetch() -> list[dict[str, object]]:
        async with reader(s) as st:
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


@deadletters_app.command("replay")
def deadletters_replay(
    reason: Annotated[str, typer.Option(help="replay dead letters of this reason")],
    source: Annotated[str | None, typer.Option(help="only this configured source")] = None,
    since: Annotated[str | None, typer.Option(help="only newer ones: RFC 3339 or 2h/7d ago")
                     ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1_000_000)] = 100_000,
    config: ConfigOpt = None,
) -> None:
    """Decode kept dead letters again (after fixing a mapping or codec); store what decodes."""
    import time
    from datetime import datetime

    from citypilot.replay import replay
    from simulators.cli import parse_duration

    s = settings(config)
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
    report = asyncio.run(replay(s, reason=reason, source=source, since_ns=since_ns,
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
    import time

    from ingest.decode.preview import SAMPLE_TOPICS, preview
    from ingest.sources import SourceConfigError, adhoc_source, decoder_for, load_sources

    s = settings(config)
    try:
        if source is not None:
            chosen = [x for x in load_sources(s.sources) if x.name == source]
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
def sources_list(config: ConfigOpt = None,
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """The configured sources: name, format, pilot, topic filter, broker."""
    from ingest.mqtt import redact_url
    from ingest.sources import load_sources

    s = settings(config)
    rows = [{"name": x.name, "format": x.format.value, "pilot": x.pilot, "topic": x.topic,
             "broker": redact_url(x.mqtt_url or s.mqtt_url)} for x in load_sources(s.sources)]
    for row in rows:
        sys.stdout.write(orjson.dumps(row).decode() + "\n" if as_json else
                         "{name:<20} {format:<14} {pilot:<16} {topic:<32} {broker}\n"
                         .format(**row))
    typer.echo(f"{len(rows)} source(s)", err=True)


# --- API, KPIs, API keys, registry (issue 4) -------------------------------------------------
# api/cli.py owns the commands `api`, `kpi`, `apikey` and `registry`; this block only hands
# them the settings. Importing api.cli loads typer alone: FastAPI loads inside `api`.
from api.cli import mount as mount_api  # noqa: E402  (this block stays self-contained)
from api.options import CliOptions  # noqa: E402


def _api_options(config: Path | None) -> CliOptions:
    from api.options import ApiOptions, CliOptions, KpiOptions

    s = settings(config)
    return CliOptions(
        api=ApiOptions(store_url=s.store_url, catalog_url=s.catalog_url, mqtt_url=s.mqtt_url,
                       max_points=s.api_max_points,
                       kpi=KpiOptions(default_interval_s=s.default_interval_s)),
        host=s.api_host, port=s.api_port)


mount_api(app, _api_options)
# --- end of the API block ---------------------------------------------------------------------

# --- Grafana dashboards (issue 5) -------------------------------------------------------------
# api/grafana/cli.py owns `dashboards generate|check|push`; this block hands it the store URL.
from api.grafana.cli import mount as mount_dashboards  # noqa: E402

mount_dashboards(app, lambda config: settings(config).store_url)
# --- end of the dashboards block --------------------------------------------------------------


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="simulated pilot, demo API key, "
                                       "shipped defaults allowed")] = False,
    port: Annotated[int, typer.Option(help="embedded broker port (a free one if taken)")] = 1883,
    api_port: Annotated[int, typer.Option(help="API and console port (0: off)")] = 8000,
    simulate: Annotated[bool, typer.Option(help="run the simulators (default with "
                                           "--demo)")] = False,
    backfill: Annotated[str, typer.Option(help="history the simulators publish first, "
                                          "e.g. 1d, 30d")] = "1d",
    rate: Annotated[float, typer.Option(help="simulated messages/s after the backfill",
                                        min=0.0)] = 20.0,
    config: ConfigOpt = None,
) -> None:
    """All in one process: embedded broker, collector, API/console, optional simulators."""
    s = settings(config, demo=demo)
    from citypilot import demo as all_in_one
    from simulators.cli import SimulateOptions, parse_duration, run_async

    broker_port = all_in_one.pick_port(port)
    web_port = all_in_one.pick_port(api_port) if api_port else None

    async def feed(url: str) -> object:
        opts = SimulateOptions(mqtt_url=url, rate=rate, duration_s=365 * 86400.0,
                               backfill_s=parse_duration(backfill), client_id="citypilot-demo")
        return await run_async(opts)

    asyncio.run(all_in_one.run(s, port=broker_port, api_port=web_port,
                               publisher=feed if (demo or simulate) else None))


# --- the gateway agent and its credentials, the simulators, the demo ---------------------------
from citypilot.agent import gateway as _gateway_agent  # noqa: E402
from citypilot.gateways import admin_app as _gateway_app  # noqa: E402
from simulators.cli import simulate as _simulate  # noqa: E402

_gateway_app.callback(invoke_without_command=True)(_gateway_agent)
app.add_typer(_gateway_app, name="gateway")
app.command("simulate", help="Publish a simulated fleet of sensors and public services.")(
    _simulate)


def main() -> None:
    app()
