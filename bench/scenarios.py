"""citypilot's own figures: one fresh collector process, database and spool per scenario.

- A, B (throughput): all messages are handed to the C publishers at once; readings/s from that
  moment until InfluxDB answers a count equal to the number published.
- C (latency): a paced load at a fixed rate plus marker readings every 50 ms whose `ts` is
  their publish time; a poller queries InfluxDB every 20 ms, and a marker's latency is the
  time of the first answer that contains it minus its publish time (an upper bound).
- D (outage): a paced load through a 60 s InfluxDB outage (stopped, then started on the same
  data); the collector's RSS every 0.5 s and its kernel high-water mark; then every published
  reading must be in InfluxDB.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.ceilings import split_lines
from bench.load import CPublishers, MarkerPublisher, array_lines, past_base_ms, topic
from bench.measure import CpuWindow, MarkerPoller, percentile, poll_stored, wait_stored
from bench.rig import Rig
from bench.subject import Collector, RssSampler

log = logging.getLogger(__name__)

PUBLISHERS = 4


@dataclass(frozen=True, slots=True)
class Sizes:
    broker_msgs: int
    paho_msgs: int
    influx_points: int
    a_msgs: int
    b_msgs: int
    b_per_msg: int
    c_rate: float
    c_seconds: float
    d_rate: float
    d_before_s: float
    d_outage_s: float
    d_after_s: float


FULL = Sizes(200_000, 200_000, 1_000_000, 200_000, 4_000, 50, 10_000, 20, 10_000, 15, 60, 15)
QUICK = Sizes(50_000, 50_000, 200_000, 50_000, 1_000, 50, 10_000, 5, 10_000, 5, 10, 5)


def _devices(name: str) -> list[str]:
    return [topic(f"{name.lower()}-dev{i}") for i in range(PUBLISHERS)]


def throughput(rig: Rig, name: str, lines: list[list[bytes]], readings: int,
               profile_dir: Path | None, processes: int = 1) -> dict[str, Any]:
    """Publish everything at once; readings/s until the last reading is queryable. With
    `processes` > 1 the collectors share the subscription (`CITYPILOT_MQTT_SHARE_GROUP`)."""
    database = f"bench_{name.lower()}"
    rig.create_database(database)
    messages = sum(len(chunk) for chunk in lines)
    env = {"CITYPILOT_MQTT_SHARE_GROUP": f"bench-{name}"} if processes > 1 else {}
    with ExitStack() as stack:
        collectors = [stack.enter_context(Collector(rig, f"{name}{i or ''}", database,
                                                    profile_dir=profile_dir, **env))
                      for i in range(processes)]
        pubs = stack.enter_context(CPublishers(rig, _devices(name), f"bench-{name}-pub"))
        cpu = CpuWindow(rig, collectors, pubs.pids)
        cpu.start()
        t0 = pubs.feed_all(lines)
        seconds = wait_stored(rig, collectors, database, readings, 600) - t0
        used = cpu.stop()
        for c in collectors:
            c.stop_profiler()
        rejected = sum(c.metrics().get("citypilot_messages_rejected_total", 0.0)
                       for c in collectors)
        peak = max(c.peak_rss_mb() for c in collectors)
    return {"messages": messages, "readings": readings, "seconds": seconds,
            "collectors": processes, "msgs_s": messages / seconds,
            "readings_s": readings / seconds, "peak_rss_mb": peak, "cpu_s": used,
            "collector_cores": used["collector"] / seconds, "dead_letters": rejected}


def scenario_a(rig: Rig, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    return throughput(rig, "A", split_lines(sizes.a_msgs, PUBLISHERS), sizes.a_msgs,
                      profile_dir)


def scenario_a2(rig: Rig, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    """A through two collector processes in one shared-subscription group (not run by
    default: it shows what the design's scale-out path buys on this machine)."""
    return throughput(rig, "A2", split_lines(sizes.a_msgs, PUBLISHERS), sizes.a_msgs,
                      profile_dir, processes=2)


def scenario_b(rig: Rig, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    per_pub = sizes.b_msgs // PUBLISHERS
    readings = per_pub * PUBLISHERS * sizes.b_per_msg
    lines = [array_lines(per_pub, sizes.b_per_msg, past_base_ms(per_pub * sizes.b_per_msg))
             for _ in range(PUBLISHERS)]
    result = throughput(rig, "B", lines, readings, profile_dir)
    result["readings_per_msg"] = sizes.b_per_msg
    return result


def _paced_lines(rate: float, seconds: float) -> list[list[bytes]]:
    return split_lines(int(rate * seconds), PUBLISHERS)


def scenario_c(rig: Rig, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    """Fixed rate; markers give publish-to-queryable latency."""
    database = "bench_c"
    rig.create_database(database)
    lines = _paced_lines(sizes.c_rate, sizes.c_seconds)
    total = sum(len(chunk) for chunk in lines)
    with Collector(rig, "C", database, profile_dir=profile_dir) as collector, \
            CPublishers(rig, _devices("C"), "bench-C-pub") as pubs:
        markers = MarkerPublisher(rig)
        poller = MarkerPoller(rig, database, markers)
        cpu = CpuWindow(rig, [collector], pubs.pids)
        cpu.start()
        t0 = time.time()
        markers.start()
        poller.start()
        pubs.feed_paced(lines, sizes.c_rate, t0)
        published_s = time.time() - t0
        markers.stop()
        poller.wait_all(60)
        wait_stored(rig, [collector], database, total + len(markers.published), 120)
        used = cpu.stop()
        peak = collector.peak_rss_mb()
    lat = poller.latencies()
    return {"messages": total, "rate_target": sizes.c_rate, "rate_achieved": total / published_s,
            "markers": len(markers.published), "markers_seen": len(lat),
            "poll_interval_s": poller.interval_s, "p50_s": percentile(lat, 50),
            "p99_s": percentile(lat, 99), "max_s": max(lat, default=float("nan")),
            "peak_rss_mb": peak, "cpu_s": used,
            "collector_cores": used["collector"] / used["wall"]}


def _outage(rig: Rig, t0: float, sizes: Sizes, events: dict[str, float]) -> None:
    """Stop InfluxDB `d_before_s` after t0, start it again `d_outage_s` later."""
    time.sleep(max(0.0, t0 + sizes.d_before_s - time.time()))
    events["influx_stopped"] = time.time() - t0
    rig.stop_influx()
    log.info("D: InfluxDB stopped for %g s", sizes.d_outage_s)
    time.sleep(max(0.0, t0 + sizes.d_before_s + sizes.d_outage_s - time.time()))
    events["influx_starting"] = time.time() - t0
    rig.influx.start()
    events["influx_back"] = time.time() - t0
    log.info("D: InfluxDB back after %.1f s", events["influx_back"] - events["influx_stopped"])


def _rss_phases(rss: RssSampler, t0: float, events: dict[str, float]) -> dict[str, float]:
    """Highest RSS sample before, during and after the outage (flat memory or not)."""
    stopped, back = t0 + events["influx_stopped"], t0 + events["influx_back"]
    return {"before": rss.max_between(t0, stopped), "during": rss.max_between(stopped, back),
            "after": rss.max_between(back, time.time())}


def scenario_d(rig: Rig, sizes: Sizes, profile_dir: Path | None) -> dict[str, Any]:
    """Fixed rate through an InfluxDB outage: memory and loss."""
    database = "bench_d"
    rig.create_database(database)
    seconds = sizes.d_before_s + sizes.d_outage_s + sizes.d_after_s
    lines = _paced_lines(sizes.d_rate, seconds)
    total = sum(len(chunk) for chunk in lines)
    events: dict[str, float] = {}
    with Collector(rig, "D", database, profile_dir=profile_dir) as collector, \
            RssSampler(collector) as rss, CPublishers(rig, _devices("D"), "bench-D-pub") as pubs:
        cpu = CpuWindow(rig, [collector], pubs.pids)
        cpu.start()
        t0 = time.time()
        outage = threading.Thread(target=_outage, args=(rig, t0, sizes, events), daemon=True)
        outage.start()
        pubs.feed_paced(lines, sizes.d_rate, t0)
        events["published"] = time.time() - t0
        outage.join()
        t_end = poll_stored(rig, [collector], database, total, 300)
        if t_end is not None:
            events["all_queryable"] = t_end - t0
        used = cpu.stop()
        metrics = collector.metrics()
        peak = collector.peak_rss_mb()
    stored = rig.count(database) or 0
    return {"messages": total, "rate_target": sizes.d_rate,
            "rate_achieved": total / events["published"], "outage_s": sizes.d_outage_s,
            "events_s": {k: round(v, 2) for k, v in events.items()},
            "drain_s": events.get("all_queryable", math.nan) - events["influx_back"],
            "peak_rss_mb": peak, "peak_rss_sampled_mb": rss.peak_mb,
            "rss_phases_mb": _rss_phases(rss, t0, events),
            "rss_samples_mb": [(round(t, 1), round(mb, 1)) for t, mb in rss.samples],
            "spooled_points": metrics.get("citypilot_points_spooled_total", 0.0),
            "stored": stored, "lost": total - stored, "cpu_s": used}
