"""The benchmark's table (stdout) and its JSON record (bench/results/, not committed).

Each row is one figure with its target and its ratio to the ceilings measured in the same
run: ÷broker is messages/s over Mosquitto's C-to-C rate, ÷paho over a bare paho subscriber's,
÷influx is readings/s over InfluxDB's raw line-protocol ingest in points/s. The ceilings are
measured before and after the scenarios (both shown, the higher used for the ratios), so a
machine whose load changed during the run shows it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).with_name("results")


@dataclass(frozen=True, slots=True)
class Row:
    figure: str
    measured: str
    target: str = ""
    vs_broker: float | None = None
    vs_paho: float | None = None
    vs_influx: float | None = None
    verdict: str = ""


def _n(value: float, unit: str) -> str:
    return f"{value:,.0f} {unit}"


def _ratio(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.2f}"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def best_ceilings(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """The higher of the two measurements of each ceiling: what the machine can do."""
    return {"broker_msgs_s": max(before["broker"]["msgs_s"], after["broker"]["msgs_s"]),
            "paho_msgs_s": max(before["paho"]["msgs_s"], after["paho"]["msgs_s"]),
            "influx_points_s": max(before["influx"]["points_s"], after["influx"]["points_s"])}


def ceiling_rows(before: dict[str, Any], after: dict[str, Any]) -> list[Row]:
    """Each ceiling as `before / after` the scenarios; ratios use the higher."""
    def pair(key: str, field: str, unit: str) -> str:
        return f"{before[key][field]:,.0f} / {after[key][field]:,.0f} {unit}"
    return [
        Row("ceiling: Mosquitto, C pub -> C sub (QoS 1)", pair("broker", "msgs_s", "msg/s")),
        Row("ceiling: bare paho subscriber, MQTT 5", pair("paho", "msgs_s", "msg/s")),
        Row("(info) bare paho subscriber, MQTT 3.1.1", pair("paho_311", "msgs_s", "msg/s")),
        Row("ceiling: InfluxDB raw line protocol", pair("influx", "points_s", "points/s")),
    ]


def throughput_rows(results: dict[str, Any], c: dict[str, float]) -> list[Row]:
    rows = []
    if a := results.get("A"):
        rows.append(Row("A: 1 reading/msg, end to end", _n(a["msgs_s"], "msg/s"),
                        ">= 20,000 msg/s", a["msgs_s"] / c["broker_msgs_s"],
                        a["msgs_s"] / c["paho_msgs_s"], a["readings_s"] / c["influx_points_s"],
                        _verdict(a["msgs_s"] >= 20_000)))
    if a2 := results.get("A2"):
        rows.append(Row(f"A2: as A, {a2['collectors']} collectors sharing the subscription",
                        _n(a2["msgs_s"], "msg/s"), ">= 20,000 msg/s",
                        a2["msgs_s"] / c["broker_msgs_s"], a2["msgs_s"] / c["paho_msgs_s"],
                        a2["readings_s"] / c["influx_points_s"],
                        _verdict(a2["msgs_s"] >= 20_000)))
    if b := results.get("B"):
        rows.append(Row(f"B: {b['readings_per_msg']} readings/msg, end to end",
                        _n(b["readings_s"], "readings/s"), ">= 100,000 readings/s",
                        vs_influx=b["readings_s"] / c["influx_points_s"],
                        verdict=_verdict(b["readings_s"] >= 100_000)))
    return rows


def latency_rows(results: dict[str, Any]) -> list[Row]:
    c = results.get("C")
    if not c:
        return []
    at = f"@ {c['rate_achieved']:,.0f} msg/s"
    missing = c["markers"] - c["markers_seen"]
    return [
        Row(f"C: publish->queryable p50 {at}", f"{c['p50_s']:.3f} s"),
        Row(f"C: publish->queryable p99 {at}", f"{c['p99_s']:.3f} s", "< 2 s",
            verdict=_verdict(c["p99_s"] < 2 and missing == 0)),
    ]


def outage_rows(results: dict[str, Any]) -> list[Row]:
    d = results.get("D")
    if not d:
        return []
    at = f"{d['outage_s']:g} s outage @ {d['rate_achieved']:,.0f} msg/s"
    return [
        Row(f"D: peak RSS, {at}", f"{d['peak_rss_mb']:.0f} MB", "< 200 MB",
            verdict=_verdict(d["peak_rss_mb"] < 200)),
        Row("D: RSS max before / during / after the outage",
            "{before:.0f} / {during:.0f} / {after:.0f} MB".format(**d["rss_phases_mb"])),
        Row("D: readings lost", f"{d['lost']:,} of {d['messages']:,}", "0",
            verdict=_verdict(d["lost"] == 0)),
        Row("D: drain after InfluxDB is back", f"{d['drain_s']:.1f} s"),
    ]


def resource_rows(results: dict[str, Any]) -> list[Row]:
    rows = []
    for name in ("A", "A2", "B", "C"):
        r = results.get(name)
        if r:
            per = r["cpu_s"]["collector"] / r.get("readings", r["messages"]) * 1e6
            rows.append(Row(f"{name}: collector peak RSS / CPU / CPU per reading",
                            f"{r['peak_rss_mb']:.0f} MB / {r['collector_cores']:.2f} cores "
                            f"/ {per:.1f} µs"))
    other = [f"{name} {r['cpu_s']['other'] / r['cpu_s']['wall']:.2f}"
             for name, r in results.items() if r and "cpu_s" in r]
    if other:
        rows.append(Row("CPU taken by other processes (cores)", ", ".join(other)))
    return rows


def render(rows: list[Row]) -> str:
    header = ("figure", "measured", "target", "÷broker", "÷paho", "÷influx", "verdict")
    cells = [header] + [(r.figure, r.measured, r.target, _ratio(r.vs_broker),
                         _ratio(r.vs_paho), _ratio(r.vs_influx), r.verdict) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    right = {1, 3, 4, 5}

    def line(row: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.rjust(w) if i in right else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths, strict=True))) + " |"
    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(c) for c in cells[1:])])


def code_version() -> str:
    """The commit measured, and whether the collector's code differs from it."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--",
                                "ingest", "citypilot"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in ingest/ or citypilot/" if dirty else "")


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version(), "loadavg": os.getloadavg(),
            "code": code_version()}


def save(record: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    text = json.dumps(record, indent=2, default=str)
    path.write_text(text)
    (directory / "latest.json").write_text(text)
    return path
