"""`citypilot simulate`: publish a simulated Smart City fleet to an MQTT broker.

The Typer app `app` has the command as its callback (for running it alone); the composition
root mounts it with `mount(root)`. `run`, `run_async` and `SimulateOptions` are re-exported
for `citypilot up --demo`.

The only module of `simulators` that reads the environment (`CITYPILOT_MQTT_URL`, the default
of `--mqtt-url`). Progress goes to stderr, the summary (JSON) to `--summary-json` or stdout.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, TypeVar

import orjson
import typer

from ingest.cli import parse_duration
from simulators.faults import Fault, FaultSpec
from simulators.publisher import PublishError
from simulators.runner import (
    DEFAULT_MQTT_URL,
    Progress,
    SimulateOptions,
    run,
    run_async,
)
from simulators.summary import Summary

__all__ = ["SimulateOptions", "Summary", "app", "mount", "parse_duration", "run", "run_async",
           "simulate"]

log = logging.getLogger(__name__)
T = TypeVar("T")

app = typer.Typer(add_completion=False, help="Publish a simulated Smart City fleet over MQTT.")

def mount(root: typer.Typer) -> None:
    """Add `simulate` to the root command."""
    root.command("simulate", help="Publish a simulated fleet of sensors and public services.")(
        simulate)


def _parse_start(text: str) -> int:
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither epoch milliseconds nor RFC 3339") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return round(parsed.timestamp() * 1000)


class _ProgressLine:
    """A progress line on stderr: rewritten in place on a terminal, every 5 s otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._next = 0.0
        self._last: tuple[float, int] = (0.0, 0)

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + (0.25 if self.tty else 5.0)
        then, count = self._last
        rate = (p.acked - count) / (now - then) if then else 0.0
        self._last = (now, p.acked)
        line = (f"simulate: {p.phase} {p.published:,} published, {p.acked:,} acked, "
                f"{rate:,.0f} msg/s, {p.elapsed_s:,.0f} s")
        sys.stderr.write(f"\r{line:<78}" if self.tty else line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


@app.callback(invoke_without_command=True)
def simulate(
    pilots: Annotated[int, typer.Option(min=1, help="Number of pilots.")] = 1,
    gateways: Annotated[int, typer.Option(min=1, help="Gateways per pilot.")] = 2,
    devices: Annotated[int, typer.Option(min=1, help="Devices per gateway.")] = 7,
    rate: Annotated[float, typer.Option(
        min=0.0, help="Messages/s for the whole run; 0: as fast as possible.")] = 20.0,
    duration: Annotated[str, typer.Option(help="Live run length: 90, 10s, 5m, 2h.")] = "60s",
    faults: Annotated[float, typer.Option(
        min=0.0, max=1.0, help="Share of messages that carry a fault, 0-1.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Same seed (and --start): same messages.")] = 42,
    mqtt_url: Annotated[str, typer.Option(
        envvar="CITYPILOT_MQTT_URL", help="mqtt://[user:pass@]host[:port] or mqtts://...")
    ] = DEFAULT_MQTT_URL,
    backfill: Annotated[str, typer.Option(
        help="History to publish first at each device's interval, e.g. 30d.")] = "0",
    summary_json: Annotated[Path | None, typer.Option(
        help="Write the summary JSON here ('-': stdout, the default).")] = None,
    pilot_prefix: Annotated[str, typer.Option(help="Pilot ids are <prefix>-01, ...")] = "pilot",
    start: Annotated[str | None, typer.Option(
        help="Pin the live start (epoch ms or RFC 3339) for a reproducible run.")] = None,
    fault_mix: Annotated[str | None, typer.Option(
        help="Fault weights, e.g. dropout=3,malformed=1 (others off).")] = None,
    window: Annotated[int, typer.Option(
        min=1, help="Publishes in flight (capped by the broker's Receive Maximum).")] = 1_000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Publish a simulated fleet of sensors and public services; exit 0 once the broker has
    acknowledged every message."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                            stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    weights = _parsed("--fault-mix", _fault_mix, fault_mix) if fault_mix else None
    options = SimulateOptions(
        pilots=pilots, gateways=gateways, devices=devices, rate=rate, faults=faults, seed=seed,
        duration_s=_parsed("--duration", parse_duration, duration),
        backfill_s=_parsed("--backfill", parse_duration, backfill),
        start_ms=_parsed("--start", _parse_start, start) if start is not None else None,
        mqtt_url=mqtt_url, pilot_prefix=pilot_prefix, fault_weights=weights, window=window)
    summary = _run_interruptible(options)
    _write(summary, summary_json)
    if summary.cancelled:
        raise typer.Exit(130)
    if summary.refused:
        typer.echo(f"simulate: the broker refused {summary.refused} publishes "
                   f"(not authorised?)", err=True)
        raise typer.Exit(1)


def _fault_mix(text: str) -> dict[Fault, float]:
    weights = FaultSpec.parse_weights(text)
    FaultSpec(0.0, weights)  # rejects negative weights and a mix with nothing left on
    return weights


def _parsed(param: str, parse: Callable[[str], T], text: str) -> T:
    """`parse(text)`, a ValueError becoming a usage error (exit code 2) naming the option."""
    try:
        return parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=param) from None


def _run_interruptible(options: SimulateOptions) -> Summary:
    """`run` in a worker thread, so that Ctrl-C cancels it cleanly and still yields a summary."""
    cancel = threading.Event()
    line = _ProgressLine()
    outcome: list[Summary | BaseException] = []

    def work() -> None:
        try:
            outcome.append(run(options, cancel=cancel, progress=line))
        except BaseException as exc:  # reported by the main thread
            outcome.append(exc)

    worker = threading.Thread(target=work, name="citypilot-simulate")
    worker.start()
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        cancel.set()
        worker.join()
    line.done()
    result = outcome[0]
    if isinstance(result, PublishError):
        typer.echo(f"simulate: {result}", err=True)
        raise typer.Exit(1)
    if isinstance(result, ValueError):
        raise typer.BadParameter(str(result))
    if isinstance(result, BaseException):
        raise result
    typer.echo(f"simulate: published {result.published:,} messages "
               f"({result.messages['telemetry']:,} telemetry, {result.messages['event']:,} "
               f"event, {result.messages['status']:,} status), {result.acked:,} acknowledged, "
               f"in {result.meta.get('elapsed_s', 0):.1f} s", err=True)
    return result


def _write(summary: Summary, target: Path | None) -> None:
    data = orjson.dumps(summary.to_json(), option=orjson.OPT_INDENT_2) + b"\n"
    if target is None or str(target) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        target.write_bytes(data)
