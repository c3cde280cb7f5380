"""`citypilot doctor`: the pre-flight check, one finding per line on stdout (or `--json`),
exit 0 when clean, 1 with warnings, 2 with errors.

Mounted by `api/cli.py`; the composition root's loader fills `DoctorOptions` from the
settings (spool, CA file, shipped secrets), and the options here refine it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from api.commands import ConfigOpt, Loader


def mount(app: typer.Typer, load: Loader) -> None:
    @app.command("doctor")
    def doctor(
        config: ConfigOpt = None,
        as_json: Annotated[bool, typer.Option("--json", help="the findings as a JSON list "
                                              "(id, level, message, fix)")] = False,
        probe_messages: Annotated[int, typer.Option(
            min=0, max=100_000, help="messages the queue probe has the broker keep for a "
            "disconnected session (0: no probe)")] = 2000,
        probe_url: Annotated[str | None, typer.Option(
            help="mqtt(s):// URL of an account that may read and write citypilot/doctor/# "
            "(default: CITYPILOT_MQTT_URL's)")] = None,
        mosquitto_conf: Annotated[Path | None, typer.Option(
            help="the broker's mosquitto.conf, to check what $SYS cannot tell "
            "(persistence, max_queued_messages)")] = None,
        max_series_per_database: Annotated[int, typer.Option(
            min=0, help="InfluxDB's limit when SHOW DIAGNOSTICS (admin only) does not tell "
            "it (0: unlimited)")] = 1_000_000,
        max_values_per_tag: Annotated[int, typer.Option(
            min=0, help="likewise for max-values-per-tag")] = 100_000,
    ) -> None:
        """Check the broker, the store, the spool's disk, clocks, certificates, secrets and
        rollups; print one line per finding with its fix. Exit 0 clean, 1 warnings, 2 errors."""
        from api.catalog import Catalog, CatalogError
        from api.doctor.checks import exit_code
        from api.doctor.facts import examine

        options = load(config).api
        doc = dataclasses.replace(
            options.doctor, probe_messages=probe_messages,
            probe_url=probe_url or options.doctor.probe_url,
            mosquitto_conf=str(mosquitto_conf) if mosquitto_conf else None,
            max_series_per_database=max_series_per_database,
            max_values_per_tag=max_values_per_tag)
        try:
            catalog = Catalog(options.catalog_url)
        except CatalogError as exc:
            typer.echo(f"citypilot: {exc}", err=True)
            raise typer.Exit(2) from None
        try:
            findings = asyncio.run(examine(dataclasses.replace(options, doctor=doc), catalog))
        finally:
            catalog.close()
        if as_json:
            sys.stdout.write(json.dumps([f.model_dump(mode="json") for f in findings],
                                        ensure_ascii=False, indent=1) + "\n")
        else:
            sys.stdout.write("".join(f.line() + "\n" for f in findings))
        raise typer.Exit(exit_code(findings))
