"""`citypilot gateway --pilot P --gateway G --upstream URL`: run the gateway agent.

The composition root hands the agent (`ingest.gateway`) its simulated source, built from the
simulators, so `ingest` never imports `simulators`: `--simulate N` runs N simulated devices of
this gateway, paced by the wall clock at `--rate` messages/s (the device ids and payloads come
from the same deterministic scenario as `citypilot simulate`; same seed, same readings).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import orjson
import typer

from citypilot.settings import SettingsError, load, refuse_shipped_secrets
from ingest.cli import parse_duration
from ingest.gateway import EXIT_DRAIN_TIMEOUT, GatewayAgent, GatewayOptions, Uplink, UplinkSource
from ingest.mqtt import MqttConfigError, MqttOptions, parse_broker_url


def simulated_source(devices: int, rate: float, duration_s: float, seed: int,
                     faults: float) -> UplinkSource:
    """The simulators' fleet of one gateway as the agent's source, paced in real time."""
    from simulators.deployment import FleetSpec
    from simulators.faults import FaultSpec
    from simulators.scenario import Scenario

    scenario = Scenario(FleetSpec(1, 1, devices, seed, "pilot"), FaultSpec(faults))

    async def readings() -> AsyncIterator[Uplink]:
        start = time.time_ns() // 1_000_000
        speedup = scenario.speedup_for(rate, start)
        wall0 = time.monotonic()
        for msg in scenario.window(start, start + round(duration_s * 1000), speedup):
            due = wall0 + (msg.at_ms - start) / 1000  # the window is already sped up
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            _, _, _, _, device, channel = msg.topic.split("/")
            yield device, channel, msg.payload

    return readings


def gateway(
    ctx: typer.Context,
    pilot: Annotated[str | None, typer.Option(help="this gateway's pilot id")] = None,
    gateway: Annotated[str | None, typer.Option(help="this gateway's id")] = None,
    upstream: Annotated[str | None, typer.Option(
        help="central broker: mqtts://user:pass@host:8883 [CITYPILOT_MQTT_URL]")] = None,
    simulate: Annotated[int, typer.Option(help="simulated devices (0: none)", min=0)] = 0,
    rate: Annotated[float, typer.Option(help="simulated messages/s", min=0.0)] = 1.0,
    duration: Annotated[str | None, typer.Option(
        help="run this long (90, 10s, 5m), then exit once everything is delivered")] = None,
    seed: Annotated[int, typer.Option(help="simulation seed")] = 42,
    faults: Annotated[float, typer.Option(help="share of simulated messages with a fault",
                                          min=0.0, max=1.0)] = 0.0,
    listen: Annotated[int | None, typer.Option(
        help="port of the site broker that local sensors publish {device}/{channel} to")] = None,
    listen_host: Annotated[str | None, typer.Option(
        help="address of the site broker [CITYPILOT_GATEWAY_LISTEN_HOST, 127.0.0.1]")] = None,
    listen_password_file: Annotated[Path | None, typer.Option(
        help="Mosquitto password file of its clients, no anonymous one "
        "[CITYPILOT_GATEWAY_LISTEN_PASSWORD_FILE]")] = None,
    spool_dir: Annotated[Path | None, typer.Option(
        help="spool directory [CITYPILOT_SPOOL_DIR/gateway]")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        help="port of /metrics, /healthz and /readyz (ready: spool writable, uplink "
        "connected) [CITYPILOT_GATEWAY_METRICS_PORT, 0: off]", min=0, max=65535)] = None,
    spool_max_bytes: Annotated[int, typer.Option(help="spool bound", min=1024)] = 256 << 20,
    drain_timeout: Annotated[float | None, typer.Option(
        help="with --duration: give up delivering after this many seconds (exit 3)")] = None,
    heartbeat: Annotated[float, typer.Option(help="status heartbeat interval, s")] = 30.0,
    summary_json: Annotated[Path | None, typer.Option(
        help="write {generated, delivered, dropped, ...} here at exit")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c")] = None,
) -> None:
    """Run the gateway agent: spool locally, forward to the central broker with QoS 1."""
    if ctx.invoked_subcommand is not None:
        return
    if not pilot or not gateway:
        typer.echo("citypilot gateway: --pilot and --gateway are required to run the agent "
                   "(or use a sub-command: add, revoke, collector, ca)", err=True)
        raise typer.Exit(2)
    try:
        s = load(config)
        url = upstream or s.mqtt_url
        parse_broker_url(url)
        refuse_shipped_secrets(s.model_copy(update={"mqtt_url": url}))
        site_passwords = listen_password_file or s.gateway_listen_password_file
        if listen and site_passwords is not None and not site_passwords.is_file():
            raise SettingsError(f"gateway_listen_password_file: {site_passwords} is not a "
                                "file; make it with `mosquitto_passwd -c FILE USER`")
    except (SettingsError, MqttConfigError) as exc:
        typer.echo(f"citypilot: configuration error: {exc}", err=True)
        raise typer.Exit(2) from None
    from citypilot import logs

    logs.configure(s.log_level, s.log_format)
    options = GatewayOptions(
        pilot=pilot, gateway=gateway,
        upstream=MqttOptions(url, f"{pilot}.{gateway}",
                             ca_file=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
                             tls_insecure=s.mqtt_tls_insecure),
        spool_dir=spool_dir or s.spool_dir / "gateway", spool_max_bytes=spool_max_bytes,
        heartbeat_s=heartbeat, listen_port=listen, drain_timeout_s=drain_timeout,
        listen_host=listen_host or s.gateway_listen_host, listen_password_file=site_passwords,
        metrics_port=s.gateway_metrics_port if metrics_port is None else metrics_port)
    duration_s = parse_duration(duration) if duration else None
    sources = []
    if simulate:
        sources.append(simulated_source(simulate, rate, duration_s or 1e9, seed, faults))
    agent = GatewayAgent(options, sources)
    code = asyncio.run(_run(agent, duration_s))
    summary = agent.stats.summary(agent.spool_depth)
    if summary_json is not None:
        summary_json.write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    sys.stderr.write(f"gateway: generated {summary['generated']}, delivered "
                     f"{summary['delivered']}, dropped {summary['dropped']}\n")
    if code == EXIT_DRAIN_TIMEOUT:
        typer.echo("gateway: drain timeout; the rest stays spooled for the next start", err=True)
    raise typer.Exit(code)


async def _run(agent: GatewayAgent, duration_s: float | None) -> int:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    return await agent.run(duration_s)
