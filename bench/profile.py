"""Where the collector's time goes: a summary of a py-spy `--format raw` profile.

py-spy (`--profile`) samples the collector 200 times a second, only the thread holding the GIL
(`--gil`: the collector is bound by it, so this is where its one core of Python goes), and
writes collapsed stacks (`thread;frame;frame... count`). This module turns them into shares of
the samples: per thread, per function including callees (inclusive), and per source file for
the innermost frame (self time), which is what the README and the report quote.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")
# Frames every sample of a thread passes through (interpreter start, CLI, event loop, thread
# bootstrap): left out of the inclusive view, where they would top every list at ~100%.
_PLUMBING = ("<frozen runpy>", "citypilot/__main__.py", "citypilot/cli.py", "typer/", "click/",
             "threading.py", "asyncio/runners.py", "asyncio/base_events.py",
             "asyncio/events.py")


def _frame(text: str) -> tuple[str, str]:
    """(function, file) of a py-spy frame `func (path/file.py:line)`; py-spy already gives
    paths relative to their sys.path entry (`paho/mqtt/client.py`, `asyncio/events.py`)."""
    m = _FRAME.match(text.strip())
    if m is None:
        return text.strip(), ""
    return m["func"], m["file"]


def summarise(path: Path, top: int = 15) -> dict[str, Any]:
    """Shares (0-1) of samples by thread, by function (inclusive) and by file (self)."""
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    self_file: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, calls = frames[0], frames[1:]
        total += count
        threads[re.sub(r"\s*\(0x[0-9a-f]+\)", "", thread).strip() or thread] += count
        seen = set()
        for raw in calls:
            func, file = _frame(raw)
            if file.startswith(_PLUMBING):
                continue
            key = f"{func} ({file})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
        if calls:
            self_file[_frame(calls[-1])[1]] += count
    if not total:
        return {"samples": 0}

    def shares(c: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(v / total, 3)) for k, v in c.most_common(top)]

    return {"samples": total, "threads": shares(threads), "inclusive": shares(inclusive),
            "self_by_file": shares(self_file)}


def render(name: str, summary: dict[str, Any]) -> str:
    """Plain-text lines for the report (stdout)."""
    if not summary.get("samples"):
        return f"profile {name}: no samples"
    out = [f"profile {name}: {summary['samples']} samples at 200 Hz of the thread holding "
           "the GIL"]
    for title, key in (("by thread", "threads"), ("self time by file", "self_by_file"),
                       ("inclusive by function", "inclusive")):
        out.append(f"  {title}:")
        out += [f"    {share:6.1%}  {label}" for label, share in summary[key]]
    return "\n".join(out)
