"""The demo's live summary on stderr: messages in (at the current rate), points stored per
kind, dead letters per reason, how much history is stored and whether rollups cover it.

On a terminal it is one table that `rich` redraws in place (log records print above it); to
a file or a pipe (tests, logs) it is a plain line per interval, which greps well.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from ingest.collector import Stats

log = logging.getLogger(__name__)


class CurrentRate:
    """Messages per second over the last report interval (not the average since start,
    which decays while the simulators send at a steady rate)."""

    def __init__(self, count: int, at: float) -> None:
        self._count, self._at = count, at

    def update(self, count: int, at: float) -> float:
        rate = (count - self._count) / max(1e-9, at - self._at)
        self._count, self._at = count, at
        return rate


@dataclass
class History:
    """The demo's backfill and the rollups over it, as the summary shows them; changed in
    the event loop only."""

    span_s: float  # the history the backfill covers
    began: float  # time.monotonic() when the demo started
    first_ms: int | None = None  # due times of the oldest and newest message stored
    last_ms: int | None = None
    stored_ns: int | None = None  # wall clock when all of it was stored
    stored_s: float | None = None  # seconds from the start until then
    rolled_s: float | None = None  # ... until a rollup pass begun after that had finished

    def stored_batch(self, first_ms: int, last_ms: int) -> None:
        self.first_ms = first_ms if self.first_ms is None else self.first_ms
        self.last_ms = last_ms

    def stored_all(self) -> None:
        self.stored_ns, self.stored_s = time.time_ns(), time.monotonic() - self.began
        log.info("history stored: %s in %.1f s", _span(self.span_s), self.stored_s)

    def rolled_up(self, pass_began_ns: int) -> None:
        """A rollup pass that began at `pass_began_ns` (wall clock) has finished."""
        if self.rolled_s is None and self.stored_ns is not None \
                and pass_began_ns >= self.stored_ns:
            self.rolled_s = time.monotonic() - self.began
            log.info("rollups cover the history: %.1f s after the start", self.rolled_s)

    def rows(self) -> list[tuple[str, str]]:
        """What the summary shows (nothing without a backfill)."""
        if not self.span_s:
            return []
        if self.stored_s is not None:
            stored = f"{_span(self.span_s)} stored ({self.stored_s:.0f} s)"
        else:
            done = 0.0 if self.first_ms is None or self.last_ms is None \
                else (self.last_ms - self.first_ms) / 1000
            stored = f"{done / self.span_s:.0%} of {_span(self.span_s)} stored"
        rolled = "building" if self.rolled_s is None else \
            f"up to date ({self.rolled_s:.0f} s)"
        return [("history", stored), ("rollups", rolled)]


def _span(seconds: float) -> str:
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds / 3600:g} h"


def summary_line(st: Stats, rate: float, history: History | None = None) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in st.by_kind.most_common(6)) or "-"
    reasons = ", ".join(f"{r} {n}" for r, n in st.by_reason.most_common(4))
    return (f"in {st.received} msgs ({rate:,.0f}/s) | stored {st.stored} points: {kinds} | "
            f"dead letters {st.dead_letters}" + (f" ({reasons})" if reasons else "")
            + (f" | spooled {st.spooled}" if st.spooled else "")
            + "".join(f" | {k} {v}" for k, v in (history.rows() if history else [])))


def summary_table(st: Stats, rate: float, history: History | None = None) -> Table:
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
    for what, state in history.rows() if history else []:
        table.add_row(what, "", state)
    return table


async def report(st: Stats, every_s: float, stream: TextIO | None = None,
                 history: History | None = None) -> None:
    """Report `st` every `every_s` until cancelled: in place on a terminal, else a line."""
    out = sys.stderr if stream is None else stream
    rate = CurrentRate(st.received, time.monotonic())
    if not out.isatty():
        while True:
            await asyncio.sleep(every_s)
            now = rate.update(st.received, time.monotonic())
            out.write(summary_line(st, now, history) + "\n")
    # Without a refresh thread: the table changes only here, and a log record written to
    # stderr meanwhile is printed above it by rich's stderr redirect.
    with Live(summary_table(st, 0.0, history), console=Console(file=out), auto_refresh=False,
              redirect_stderr=out is sys.stderr, redirect_stdout=False) as live:
        while True:
            await asyncio.sleep(every_s)
            now = rate.update(st.received, time.monotonic())
            live.update(summary_table(st, now, history), refresh=True)
