"""The demo's live summary on stderr: messages in (at the current rate), points stored per
kind, dead letters per reason.

On a terminal it is one table that `rich` redraws in place (log records print above it); to
a file or a pipe (tests, logs) it is a plain line per interval, which greps well.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ingest.collector import Stats


class CurrentRate:
    """Messages per second over the last report interval (not the average since start,
    which decays while the simulators send at a steady rate)."""

    def __init__(self, count: int, at: float) -> None:
        self._count, self._at = count, at

    def update(self, count: int, at: float) -> float:
        rate = (count - self._count) / max(1e-9, at - self._at)
        self._count, self._at = count, at
        return rate


def summary_line(st: Stats, rate: float) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in st.by_kind.most_common(6)) or "-"
    reasons = ", ".join(f"{r} {n}" for r, n in st.by_reason.most_common(4))
    return (f"in {st.received} msgs ({rate:,.0f}/s) | stored {st.stored} points: {kinds} | "
            f"dead letters {st.dead_letters}" + (f" ({reasons})" if reasons else "")
            + (f" | spooled {st.spooled}" if st.spooled else ""))


def summary_table(st: Stats, rate: float) -> Table:
    table = Table(title="citypilot demo (Ctrl-C stops it)", title_justify="left",
                  show_header=False, box=None, padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_column()
    table.add_row("messages in", f"{st.received:,}", f"{rate:,.0f}/s now")
    table.add_row("points stored", f"{st.stored:,}")
    for kind, n in sorted(st.by_kind.items()):
        table.add_row("", f"{n:,}", kind)
    table.add_row("dead letters", f"{st.dead_letters:,}")
    for reason, n in sorted(st.by_reason.items()):
        table.add_row("", f"{n:,}", reason)
    if st.spooled:
        table.add_row("spooled", f"{st.spooled:,}", "waiting for the store")
    return table


async def report(st: Stats, every_s: float, stream: TextIO | None = None) -> None:
    """Report `st` every `every_s` until cancelled: in place on a terminal, else a line."""
    out = sys.stderr if stream is None else stream
    rate = CurrentRate(st.received, time.monotonic())
    if not out.isatty():
        while True:
            await asyncio.sleep(every_s)
            out.write(summary_line(st, rate.update(st.received, time.monotonic())) + "\n")
    # Without a refresh thread: the table changes only here, and a log record written to
    # stderr meanwhile is printed above it by rich's stderr redirect.
    with Live(summary_table(st, 0.0), console=Console(file=out), auto_refresh=False,
              redirect_stderr=out is sys.stderr, redirect_stdout=False) as live:
        while True:
            await asyncio.sleep(every_s)
            live.update(summary_table(st, rate.update(st.received, time.monotonic())),
                        refresh=True)
