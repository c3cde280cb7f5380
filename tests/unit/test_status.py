"""The demo's live summary: a table redrawn in place on a terminal (what is written to stderr
meanwhile prints above it), a plain line per interval to a file or pipe."""

from __future__ import annotations

import asyncio
import io
import re
import sys

import pytest

from citypilot.status import History, report
from ingest.collector import Stats
from tests.support import eventually


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def stats(received: int) -> Stats:
    st = Stats(received=received, stored=2 * received, dead_letters=1)
    st.by_kind.update({"event": received, "air_quality": received})
    st.by_reason.update({"bad_json": 1})
    return st


async def test_a_file_gets_a_plain_line_per_interval() -> None:
    out, st = io.StringIO(), stats(10)
    task = asyncio.create_task(report(st, 0.01, out))
    try:
        await eventually(lambda: out.getvalue().count("\n") >= 2)
    finally:
        task.cancel()
    first = out.getvalue().splitlines()[0]
    assert re.fullmatch(r"in 10 msgs \(0/s\) \| stored 20 points: event 10, air_quality 10 \| "
                        r"dead letters 1 \(bad_json 1\)", first), first
    assert "\x1b[" not in out.getvalue()


async def test_a_terminal_gets_one_table_redrawn_in_place(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    tty, st = Terminal(), stats(10)
    monkeypatch.setattr(sys, "stderr", tty)
    task = asyncio.create_task(report(st, 0.01))
    try:
        await eventually(lambda: "messages in" in tty.getvalue())
        sys.stderr.write("a log line\n")  # what the log handler does, meanwhile
        st.received, st.stored = 12345, 24690
        await eventually(lambda: "12,345" in tty.getvalue() and "24,690" in tty.getvalue())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    text = tty.getvalue()
    assert "a log line" in text
    assert re.search(r"\x1b\[\d*A", text), "the table must be redrawn, not appended"
    assert "in 10 msgs" not in text  # no plain lines on a terminal
    assert sys.stderr is tty  # the redirect ends with the table


def test_the_history_rows_follow_the_backfill() -> None:
    history = History(span_s=4 * 86400, began=0.0)
    assert history.rows() == [("history", "0% of 4 days stored"), ("rollups", "building")]
    history.stored_batch(0, 86400_000)
    assert history.rows()[0] == ("history", "25% of 4 days stored")
    history.stored_all()
    history.rolled_up(pass_began_ns=0)  # a pass begun before the history was stored
    assert history.rolled_s is None
    assert history.stored_ns is not None
    history.rolled_up(pass_began_ns=history.stored_ns)
    assert history.rows()[1][1].startswith("up to date (")
    assert History(span_s=0.0, began=0.0).rows() == []  # no backfill, nothing to show
