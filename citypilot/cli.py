"""The `citypilot` command: one entry point, sub-commands mounted from the packages.

Each package owns its commands in its own `cli.py` (`ingest`, `api`, `dashboards`,
`simulators`); this module hands them what they need from the settings, and keeps `up` and
the gateway's wiring. A package's `cli.py` is imported only when one of its commands runs (or
`--help` lists them all), so `citypilot gateway` on a Pi loads neither FastAPI nor the
simulators (tests/cli/test_lazy_imports.py). Data goes to stdout, notes, progress and logs to
stderr. A bad setting is one line naming the key, exit code 2.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from citypilot import logs
from citypilot.settings import Settings, SettingsError, load, refuse_shipped_secrets
from ingest.cli import parse_duration

if TYPE_CHECKING:
    from api.options import CliOptions
    from ingest.cli import Wiring

Mount = Callable[[typer.Typer], None]
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
    from ingest.decode.sources import (  # the decoders: not for --help
        SourceConfigError,
        load_sources,
    )

    try:
        load_sources(s.sources)
    except SourceConfigError as exc:
        typer.echo(f"citypilot: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    return s


# -- the packages' commands, mounted on first use ------------------------------------------
# Each function below imports its package inside: importing them here would load every
# package (FastAPI with `api`) for every command.

def _ingest_wiring(config: Path | None) -> Wiring:
    from citypilot.replay import replay
    from citypilot.wiring import build_collector, reader, run_until_signalled
    from ingest.cli import Wiring

    s = settings(config)
    return Wiring(mqtt_url=s.mqtt_url, sources=s.sources,
                  collect=lambda: run_until_signalled(build_collector(s)),
                  reader=lambda: reader(s), replay=functools.partial(replay, s))


def _ingest(root: typer.Typer) -> None:
    from ingest.cli import mount

    mount(root, _ingest_wiring)


def _api_options(config: Path | None, *, doctor: bool = False) -> CliOptions:
    """`doctor` reports a shipped secret (and the broker's) instead of refusing it."""
    from api.options import ApiOptions, CliOptions, DoctorOptions, KpiOptions
    from citypilot.settings import shipped_broker_passwords, shipped_secrets

    s = settings(config, demo=doctor)
    shipped = (*shipped_secrets(s), *shipped_broker_passwords(s.mosquitto_password_file)) \
        if doctor else ()
    checkup = DoctorOptions(
        mqtt_ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
        mqtt_tls_insecure=s.mqtt_tls_insecure, spool_dir=str(s.spool_dir),
        spool_max_bytes=s.spool_max_bytes, batch_max_bytes=s.batch_max_bytes,
        max_future_s=s.max_future_s, shipped_secrets=tuple(shipped))
    return CliOptions(
        api=ApiOptions(store_url=s.store_url, catalog_url=s.catalog_url, mqtt_url=s.mqtt_url,
                       max_points=s.api_max_points, public_url=s.public_url,
                       publisher=s.publisher,
                       open_rate_limit=s.open_rate_limit,
                       auth_failure_limit=s.auth_failure_limit,
                       kpi=KpiOptions(default_interval_s=s.default_interval_s),
                       doctor=checkup),
        host=s.api_host, port=s.api_port)


def _api(root: typer.Typer) -> None:
    from api.cli import mount

    mount(root, _api_options)


def _doctor(root: typer.Typer) -> None:
    from api.doctor.cli import mount

    mount(root, functools.partial(_api_options, doctor=True))


def _api_paths() -> list[str]:
    from api.app import route_paths  # builds the FastAPI app: only for `dashboards check`

    return route_paths()


def _dashboards(root: typer.Typer) -> None:
    from dashboards.cli import mount

    mount(root, lambda config: settings(config).store_url, _api_paths)


def _simulators(root: typer.Typer) -> None:
    from simulators.cli import mount

    mount(root)


def _gateway(root: typer.Typer) -> None:
    """`citypilot gateway` runs the agent; its sub-commands manage credentials."""
    from citypilot.agent import gateway
    from citypilot.gateway_admin import admin_app

    admin_app.callback(invoke_without_command=True)(gateway)
    root.add_typer(admin_app, name="gateway")


# In the order `citypilot --help` lists them; None: defined in this module.
COMMANDS: dict[str, Mount | None] = {
    "collect": _ingest, "api": _api, "up": None, "simulate": _simulators,
    "deadletters": _ingest, "sources": _ingest, "kpi": _api, "apikey": _api,
    "registry": _api, "inventory": _api, "rollup": _api, "report": _api,
    "dashboards": _dashboards, "doctor": _doctor,
    "gateway": _gateway,
}


@functools.cache
def _mounted(mount: Mount) -> TyperGroup:
    """The group of the commands `mount` adds (built once per process)."""
    holder = typer.Typer(add_completion=False)
    mount(holder)
    return typer.main.get_group(holder)


class _Commands(MutableMapping[str, Any]):
    """The root's commands by name, in help order; a package's are built on first lookup
    (Click looks a command up by name, and lists them all only for `--help`)."""

    def __init__(self, own: MutableMapping[str, Any]) -> None:
        self._own = own  # the commands defined in this module

    def __getitem__(self, name: str) -> Any:
        if name not in COMMANDS:
            raise KeyError(name)
        mount = COMMANDS[name]
        return self._own[name] if mount is None else _mounted(mount).commands[name]

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS

    def __iter__(self) -> Iterator[str]:
        return iter(COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS)

    def __setitem__(self, name: str, command: Any) -> None:
        self._own[name] = command

    def __delitem__(self, name: str) -> None:
        del self._own[name]


class _Root(TyperGroup):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _Commands(self.commands)


app = typer.Typer(name="citypilot", cls=_Root, no_args_is_help=True, add_completion=False,
                  pretty_exceptions_show_locals=False,  # locals may hold credentials
                  help="Smart City pilot backend: MQTT gateways -> store -> KPIs.")


@app.callback()
def _root() -> None:
    """A group even with one command of its own (`up`)."""


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="simulated pilot, demo API key, "
                                       "shipped defaults allowed")] = False,
    port: Annotated[int, typer.Option(help="embedded broker port (a free one if taken)")] = 1883,
    api_port: Annotated[int, typer.Option(help="API and console port (0: off)")] = 8000,
    simulate: Annotated[bool, typer.Option(help="run the simulators (default with "
                                           "--demo)")] = False,
    backfill: Annotated[str, typer.Option(help="history the simulators store first (through "
                                          "the collector's decoders, not the broker), "
                                          "e.g. 1d, 28d")] = "28d",
    rate: Annotated[float, typer.Option(help="simulated messages/s after the backfill",
                                        min=0.0)] = 20.0,
    config: ConfigOpt = None,
) -> None:
    """All in one process: embedded broker, collector, API/console, optional simulators."""
    s = settings(config, demo=demo)
    # The collector, the API and the simulators all run in `up`: loaded only here.
    from citypilot import demo as all_in_one
    from simulators.cli import SimulateOptions, run_async

    broker_port = all_in_one.pick_port(port)
    web_port = all_in_one.pick_port(api_port) if api_port else None

    backfill_s = parse_duration(backfill)
    options = SimulateOptions(rate=rate, duration_s=365 * 86400.0, backfill_s=backfill_s,
                              client_id="citypilot-demo")
    if demo:  # the simulated devices are registered, as an operator would register them
        from simulators.deployment import build

        all_in_one.register_fleet(s, (unit.info for unit in build(options.fleet)))

    async def feed(url: str, history: all_in_one.Backfill) -> object:
        return await run_async(replace(options, mqtt_url=url), history=history)

    asyncio.run(all_in_one.run(s, port=broker_port, api_port=web_port,
                               publisher=feed if (demo or simulate) else None,
                               backfill_s=backfill_s if (demo or simulate) else 0.0))


def main() -> None:
    app()
