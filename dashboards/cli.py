"""`citypilot dashboards generate | check | push`: the Typer app the composition root mounts.

`mount(app, store_url, api_paths)` adds it as `dashboards`; `store_url(config_path)` answers
the configured store URL (`CITYPILOT_STORE_URL`): this package reads no environment.
`api_paths()` answers the API's route templates, which `check` holds the dashboards' API
targets against: the composition root builds the app, this package never imports it. Only
typer loads at import; the generators, the store's reader and `grafana-client` load inside
the commands. Notes and problems go to stderr; `check --json` writes its report to stdout.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

StoreUrl = Callable[[Path | None], str]
ApiPaths = Callable[[], list[str]]
app = typer.Typer(no_args_is_help=True, help="Grafana dashboards and alert rules "
                  "(generated from the KPI catalogue): generate, check, push.")
DirOpt = Annotated[Path, typer.Option("--dir", help="the dashboards folder (dashboard JSON "
                                      "beside provisioning/)", file_okay=False)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML config file "
                                                "(or CITYPILOT_CONFIG)")]
_DEFAULT_DIR = Path("dashboards")


@dataclass(frozen=True, slots=True)
class Wiring:
    """What the composition root hands the sub-commands (Click passes it down as `obj`)."""

    store_url: StoreUrl
    api_paths: ApiPaths


def mount(root: typer.Typer, store_url: StoreUrl, api_paths: ApiPaths) -> None:
    """Add `dashboards` to the root command."""
    root.add_typer(app, name="dashboards",
                   context_settings={"obj": Wiring(store_url, api_paths)})


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"citypilot: {message}", err=True)
    return typer.Exit(code)


@app.command()
def generate(directory: DirOpt = _DEFAULT_DIR) -> None:
    """Write the dashboard JSON and alert rules from the KPI catalogue."""
    from dashboards.build import files

    written = files.write(directory)
    for name in written:
        typer.echo(f"wrote {directory / name}", err=True)
    typer.echo(f"{len(written)} file(s) changed, {len(files.generated()) - len(written)} "
               "up to date", err=True)


@app.command()
def check(
    ctx: typer.Context,
    directory: DirOpt = _DEFAULT_DIR,
    offline: Annotated[bool, typer.Option("--offline", help="check the files only; run no "
                                          "query")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="the report as JSON on "
                                          "stdout")] = False,
    config: ConfigOpt = None,
) -> None:
    """Validate the files, then run every InfluxQL panel query against the configured
    InfluxDB (variables and time range substituted); exit 1 naming each failing panel."""
    from dashboards.build.live import check_all

    wiring: Wiring = ctx.obj
    store_url = None
    if not offline:
        store_url = wiring.store_url(config)
        if not store_url.startswith(("influxdb://", "influxdbs://")):
            raise _fail("the check runs InfluxQL: set CITYPILOT_STORE_URL to an InfluxDB "
                        "(influxdb://user:pass@host:8086/db), or pass --offline", 2)
    began = time.monotonic()
    problems, queries = asyncio.run(check_all(directory, wiring.api_paths(), store_url,
                                              time.time_ns() // 1_000_000))
    if as_json:
        sys.stdout.write(json.dumps({"ok": not problems, "queries": queries, "problems": [
            {"where": p.where, "message": p.message} for p in problems]}, indent=2) + "\n")
    for problem in problems:
        typer.echo(f"FAIL {problem}", err=True)
    typer.echo(f"{len(problems)} problem(s); {queries} quer{'y' if queries == 1 else 'ies'} "
               f"run in {time.monotonic() - began:.1f} s", err=True)
    if problems:
        raise typer.Exit(1)


def payloads(directory: Path, folder_uid: str) -> list[dict[str, Any]]:
    """The dashboards as Grafana's `POST /api/dashboards/db` bodies (overwrite by uid)."""
    from dashboards.build import files

    return [{"dashboard": {**board, "id": None}, "folderUid": folder_uid, "overwrite": True,
             "message": "citypilot dashboards push"}
            for board in files.load_dashboards(directory).values()]


@app.command()
def push(
    grafana_url: Annotated[str, typer.Option("--grafana-url", help="e.g. "
                                             "http://localhost:3000")],
    token: Annotated[str, typer.Option("--token", help="a Grafana service-account token "
                                       "(Editor)")],
    directory: DirOpt = _DEFAULT_DIR,
    folder: Annotated[str, typer.Option(help="the Grafana folder uid (and title)")] =
    "citypilot",
) -> None:
    """Upload the dashboards with grafana-client, for Grafanas without file provisioning
    (their data sources must use the uids of provisioning/datasources)."""
    try:
        client: Any = importlib.import_module("grafana_client")
        errors = (importlib.import_module("grafana_client.client").GrafanaException, OSError)
    except ImportError:
        raise _fail("push needs grafana-client: pip install grafana-client", 2) from None
    bodies = payloads(directory, folder)
    if not bodies:
        raise _fail(f"no dashboard JSON in {directory}", 2)
    grafana = client.GrafanaApi.from_url(url=grafana_url, credential=token, timeout=30.0)
    try:
        if not any(f.get("uid") == folder for f in grafana.folder.get_all_folders()):
            grafana.folder.create_folder(folder, uid=folder)
        for body in bodies:
            done = grafana.dashboard.update_dashboard(body)
            typer.echo(f"pushed {body['dashboard']['title']}: {done.get('url', '')}",
                       err=True)
    except errors as exc:  # grafana-client's own, and its HTTP stack's (all OSError)
        raise _fail(f"Grafana at {grafana_url}: {type(exc).__name__}: {exc}") from None
    typer.echo(f"{len(bodies)} dashboard(s) pushed to folder {folder!r}", err=True)
