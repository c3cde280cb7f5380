"""`python -m bench.soak --minutes 30`: one collector at a steady rate for a long time, with a
store outage every few minutes — does memory stay flat, does the spool drain, is anything lost?

A private Mosquitto and InfluxDB in a temp dir (`bench.rig`), one `citypilot collect` process,
four C publishers (`mosquitto_pub -l`, QoS 1) paced at `--rate` messages/s in total (one reading
of five values per message, every reading its own device timestamp, so the stored count must
equal the number published). Every `--outage-every` seconds InfluxDB is stopped for
`--outage-seconds` and started again on the same data. Every `--sample` seconds: the
collector's RSS, its spool depth and stored count (`/metrics`), and the number published.
At the end the benchmark waits for every reading to be queryable (up to `--drain-timeout`),
then lost = published − stored in InfluxDB.

Writes bench/results/soak-<time>.json (every sample), a table per window of `--window`
seconds to stdout, and a plot of RSS, spool depth and the outages (`--plot`, default
docs/soak.png; needs matplotlib: `pip install -e '.[bench]'`). A benchmark, never a test.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.load import CPublishers, single_lines, topic
from bench.measure import poll_stored
from bench.report import RESULTS_DIR
from bench.rig import BenchError, Rig, machine_busy_cores
from bench.subject import Collector

log = logging.getLogger("bench.soak")
PUBLISHERS = 4
DATABASE = "bench_soak"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, default=30.0, help="how long to publish (30)")
    p.add_argument("--rate", type=float, default=5000.0, help="messages/s in total (5000)")
    p.add_argument("--outage-every", type=float, default=300.0, metavar="SECONDS",
                   help="stop InfluxDB every SECONDS (300)")
    p.add_argument("--outage-seconds", type=float, default=60.0,
                   help="for how long InfluxDB is down each time (60)")
    p.add_argument("--sample", type=float, default=2.0, metavar="SECONDS",
                   help="sample interval (2)")
    p.add_argument("--window", type=float, default=300.0, metavar="SECONDS",
                   help="rows of the table (300)")
    p.add_argument("--drain-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long to wait, after publishing, for every reading (600)")
    p.add_argument("--plot", type=Path, default=Path("docs/soak.png"),
                   help="where the plot goes (docs/soak.png); '-' for none")
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    args = p.parse_args(argv)
    for name in ("minutes", "rate", "sample", "window", "outage_every"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    if not 0 <= args.outage_seconds < args.outage_every:
        p.error("--outage-seconds must be at least 0 and less than --outage-every")
    return args


class Feeder:
    """Publishes `rate` messages/s over the C publishers until `seconds` have passed, making
    the lines a second at a time (a 30-minute load does not fit in memory as one list)."""

    def __init__(self, pubs: CPublishers, rate: float, seconds: float) -> None:
        self.pubs, self.rate, self.seconds = pubs, rate, seconds
        per_device = int(rate * seconds / PUBLISHERS) + 1
        # Device timestamps a millisecond apart, all in the past when the last one is sent.
        self.base_ms = time.time_ns() // 1_000_000 - per_device - 60_000
        self.sent = [0] * PUBLISHERS
        self.published = 0

    def run(self, t0: float) -> None:
        total = int(self.rate * self.seconds)
        while self.published < total:
            due = min(total, int((time.time() - t0) * self.rate))
            for i in range(PUBLISHERS):
                want = due // PUBLISHERS + (1 if i < due % PUBLISHERS else 0) - self.sent[i]
                if want > 0:
                    lines = single_lines(want, self.base_ms + self.sent[i])
                    self.pubs.write(i, b"".join(lines), want)
                    self.sent[i] += want
            self.published = sum(self.sent)
            time.sleep(0.02)


def outages(rig: Rig, t0: float, args: argparse.Namespace, stop: threading.Event,
            events: list[tuple[float, float]]) -> None:
    """Stop InfluxDB every `outage_every` s for `outage_seconds`; (stopped, back) per outage."""
    k = 1
    while not stop.wait(max(0.0, t0 + k * args.outage_every - time.time())):
        if time.time() - t0 > args.minutes * 60:
            return
        down = time.time() - t0
        rig.stop_influx()
        log.info("InfluxDB stopped at %.0f s for %g s", down, args.outage_seconds)
        stop.wait(args.outage_seconds)
        rig.influx.start()
        events.append((down, time.time() - t0))
        k += 1


def sample(collector: Collector, feeder: Feeder, t0: float) -> dict[str, float]:
    m = collector.metrics()
    return {"t": round(time.time() - t0, 1), "rss_mb": round(collector.rss_mb(), 1),
            "spool_points": m.get("citypilot_spool_depth_points", float("nan")),
            "stored": m.get("citypilot_points_stored_total", float("nan")),
            "published": feeder.published}


def windows(samples: list[dict[str, float]], width: float) -> list[dict[str, float]]:
    """Per window of `width` seconds: rate published, highest RSS and spool depth."""
    rows: list[dict[str, float]] = []
    start, prev_t, prev_published = 0.0, 0.0, 0.0
    while True:
        inside = [s for s in samples if start < s["t"] <= start + width]
        if not inside:
            return rows
        last = inside[-1]
        rows.append({"from_s": start, "to_s": min(start + width, last["t"]),
                     "published_per_s": (last["published"] - prev_published)
                     / max(1e-9, last["t"] - prev_t),
                     "rss_max_mb": max(s["rss_mb"] for s in inside),
                     "spool_max_points": max(s["spool_points"] for s in inside)})
        prev_t, prev_published, start = last["t"], last["published"], start + width


def plot(path: Path, samples: list[dict[str, float]], outage_spans: list[tuple[float, float]],
         title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s["t"] / 60 for s in samples]
    fig, (rss, spool) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5))
    rss.plot(minutes, [s["rss_mb"] for s in samples], color="black")
    rss.set_ylabel("collector RSS (MB)")
    rss.set_ylim(bottom=0)
    spool.plot(minutes, [s["spool_points"] for s in samples], color="black", linestyle="--")
    spool.set_ylabel("spooled points")
    spool.set_xlabel("minutes")
    for ax in (rss, spool):
        for down, back in outage_spans:  # hatched, so the spans read in greyscale too
            ax.axvspan(down / 60, back / 60, facecolor="0.85", hatch="//", edgecolor="0.6")
    rss.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = args.minutes * 60
    with tempfile.TemporaryDirectory(prefix="citypilot-soak-") as tmp, Rig(Path(tmp)) as rig:
        rig.create_database(DATABASE)
        busy = machine_busy_cores(2.0)
        topics = [topic(f"soak-dev{i}") for i in range(PUBLISHERS)]
        with Collector(rig, "soak", DATABASE) as collector, \
                CPublishers(rig, topics, "bench-soak-pub") as pubs:
            feeder = Feeder(pubs, args.rate, seconds)
            spans: list[tuple[float, float]] = []
            stop = threading.Event()
            t0 = time.time()
            outage = threading.Thread(target=outages, args=(rig, t0, args, stop, spans),
                                      daemon=True)
            feed = threading.Thread(target=feeder.run, args=(t0,), daemon=True)
            outage.start()
            feed.start()
            samples: list[dict[str, float]] = []
            next_log = 60.0
            while feed.is_alive():
                samples.append(sample(collector, feeder, t0))
                if samples[-1]["t"] >= next_log:
                    s = samples[-1]
                    log.info("%4.0f s: %d published, %d stored, spool %d points, RSS %.0f MB",
                             s["t"], s["published"], s["stored"], s["spool_points"],
                             s["rss_mb"])
                    next_log += 60
                time.sleep(args.sample)
            published_s = time.time() - t0
            stop.set()
            outage.join()
            log.info("published %d in %.0f s; waiting for all of them", feeder.published,
                     published_s)
            drained = threading.Event()
            tail = threading.Thread(target=lambda: poll_stored(
                rig, [collector], DATABASE, feeder.published, args.drain_timeout)
                and drained.set(), daemon=True)
            tail.start()
            while tail.is_alive():
                samples.append(sample(collector, feeder, t0))
                tail.join(args.sample)
            samples.append(sample(collector, feeder, t0))
            peak = collector.peak_rss_mb()
            cpu = collector.cpu_s()
        stored = rig.count(DATABASE) or 0
    return {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0)),
            "minutes": args.minutes, "rate_target": args.rate,
            "rate_achieved": feeder.published / published_s,
            "outage_every_s": args.outage_every, "outage_s": args.outage_seconds,
            "outages": spans, "published": feeder.published, "stored": stored,
            "lost": feeder.published - stored, "all_arrived": drained.is_set(),
            "peak_rss_mb": peak, "collector_cpu_s": cpu,
            "collector_cores": cpu / max(1e-9, samples[-1]["t"]),
            "other_busy_cores_at_start": busy,
            "windows": windows(samples, args.window), "samples": samples}


def table(result: dict[str, Any]) -> str:
    rows = ["| minutes | published/s | collector RSS max (MB) | spooled points max |",
            "|---|---:|---:|---:|"]
    for w in result["windows"]:
        rows.append(f"| {w['from_s'] / 60:.1f}–{w['to_s'] / 60:.1f} | "
                    f"{w['published_per_s']:,.0f} | {w['rss_max_mb']:.0f} | "
                    f"{w['spool_max_points']:,.0f} |")
    rows.append(f"\npublished {result['published']:,}, stored {result['stored']:,}, "
                f"**lost {result['lost']:,}**; peak RSS (VmHWM) {result['peak_rss_mb']:.0f} MB; "
                f"{len(result['outages'])} outages of {result['outage_s']:g} s; collector "
                f"{result['collector_cores']:.2f} cores; other processes "
                f"{result['other_busy_cores_at_start']:.2f} cores at the start")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s soak: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result = run(args)
    except BenchError as exc:
        log.error("soak failed: %s", exc)
        return 1
    args.results.mkdir(parents=True, exist_ok=True)
    out = args.results / f"soak-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=1))
    if str(args.plot) != "-":
        plot(args.plot, result["samples"], result["outages"],
             f"{result['rate_target']:,.0f} msg/s for {result['minutes']:g} min, InfluxDB down "
             f"{result['outage_s']:g} s every {result['outage_every_s']:g} s; "
             f"lost {result['lost']:,} of {result['published']:,}")
    print(table(result))
    log.info("record: %s", out)
    return 0 if result["lost"] == 0 and result["all_arrived"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
