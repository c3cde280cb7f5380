"""The ceilings, measured in the same run as citypilot's figures: what the parts around the
collector can do on this machine without it.

- broker: C publishers (`mosquitto_pub -l`, QoS 1) to a C subscriber (`mosquitto_sub -q 1
  -C N`); messages/s from the first line handed to a publisher until the subscriber's last
  receipt (its `%U` timestamps), the same span citypilot's throughput is measured over.
- paho: the same publishers to a bare paho-mqtt MQTT 5 subscriber that only counts
  (`bench/pahosink.py`, its own process, auto-ack): what any Python MQTT consumer can reach.
  The same with MQTT 3.1.1, for comparison only: paho decodes MQTT 5 properties on every
  PUBLISH, which costs it CPU per message.
- InfluxDB: pre-encoded, pre-gzipped line protocol of the collector's shape (3 tags, the 5
  values plus `ingest_delay_s`), batches of 5,000, 2 concurrent HTTP connections, points/s.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from bench.load import CPublishers, past_base_ms, single_lines
from bench.rig import MEASUREMENT, PILOT, BenchError, Rig, cpu_seconds

log = logging.getLogger(__name__)

CEILING_TOPIC = "bench/ceiling"


@dataclass(frozen=True, slots=True)
class Ceilings:
    broker_msgs_s: float
    paho_msgs_s: float
    influx_points_s: float

    def as_dict(self) -> dict[str, float]:
        return {"broker_msgs_s": self.broker_msgs_s, "paho_msgs_s": self.paho_msgs_s,
                "influx_points_s": self.influx_points_s}


def _unique() -> str:
    """A suffix that keeps client ids, topics and databases of repeated runs apart (the
    broker log, which the benchmark reads to see a client arrive, keeps the earlier ones)."""
    return uuid.uuid4().hex[:6]


def split_lines(total: int, parts: int) -> list[list[bytes]]:
    """`total` one-reading lines spread over `parts` publishers (device timestamps unique)."""
    sizes = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    return [single_lines(n, past_base_ms(n)) for n in sizes]


def _publish_and_wait(rig: Rig, tag: str, total: int, publishers: int,
                      sink: subprocess.Popen[bytes], timeout_s: float) -> tuple[float, float]:
    """Feed `total` messages through C publishers; return (t0, CPU s of the broker)."""
    lines = split_lines(total, publishers)
    topics = [f"{CEILING_TOPIC}/{tag}/{i}" for i in range(publishers)]
    with CPublishers(rig, topics, f"bench-{tag}-pub") as pubs:
        broker_cpu = cpu_seconds(rig.server_pids()["mosquitto"])
        t0 = pubs.feed_all(lines)
        try:
            sink.wait(timeout_s)
        except subprocess.TimeoutExpired:
            sink.kill()
            raise BenchError(f"the {tag} subscriber did not receive {total} messages within "
                             f"{timeout_s:g} s") from None
        broker_cpu = cpu_seconds(rig.server_pids()["mosquitto"]) - broker_cpu
    return t0, broker_cpu


def broker(rig: Rig, total: int, publishers: int = 4) -> dict[str, Any]:
    """C publisher -> Mosquitto -> C subscriber (mosquitto_sub), QoS 1."""
    tag = f"c{_unique()}"
    out = rig.root / f"ceiling-mosquitto_sub-{tag}.txt"
    with out.open("wb") as sink_out:
        sink = subprocess.Popen(["mosquitto_sub", *rig.mqtt_host_port, "-q", "1", "-t",
                                 f"{CEILING_TOPIC}/{tag}/#", "-C", str(total), "-F", "%U",
                                 "-i", f"bench-{tag}-sub"], stdout=sink_out)
    rig.wait_broker_log([f"bench-{tag}-sub 1 {CEILING_TOPIC}/{tag}/#"])
    t0, broker_cpu = _publish_and_wait(rig, tag, total, publishers, sink, 120)
    stamps = out.read_text().split()
    if len(stamps) != total:
        raise BenchError(f"mosquitto_sub printed {len(stamps)} of {total} receipts")
    first, last = float(stamps[0]), float(stamps[-1])
    return {"messages": total, "publishers": publishers, "seconds": last - t0,
            "msgs_s": total / (last - t0), "first_receipt_after_s": first - t0,
            "broker_cpu_s": broker_cpu}


def paho(rig: Rig, total: int, publishers: int = 4, protocol: str = "5") -> dict[str, Any]:
    """C publishers -> Mosquitto -> bare paho-mqtt subscriber that only counts."""
    tag = ("p5" if protocol == "5" else "p3") + _unique()
    argv = [sys.executable, "-m", "bench.pahosink", "--port", str(rig.mosquitto.port),
            "--topic", f"{CEILING_TOPIC}/{tag}/#", "--count", str(total),
            "--protocol", protocol]
    sink = subprocess.Popen(argv, stdout=subprocess.PIPE)
    assert sink.stdout is not None
    if sink.stdout.readline().strip() != b"ready":
        sink.kill()
        raise BenchError("the paho sink did not subscribe")
    sink_cpu = cpu_seconds(sink.pid)
    t0, broker_cpu = _publish_and_wait(rig, tag, total, publishers, sink, 120)
    result = json.loads(sink.stdout.read())
    if result["count"] != total:
        raise BenchError(f"the paho sink counted {result['count']} of {total}")
    seconds = result["last"] - t0
    return {"messages": total, "publishers": publishers, "protocol": protocol,
            "seconds": seconds, "msgs_s": total / seconds,
            "sink_cpu_s": result["cpu_s"] - sink_cpu,
            "broker_cpu_s": broker_cpu}


def _line_batches(points: int, batch: int, devices: int = 100) -> list[bytes]:
    """Gzipped line protocol as the collector writes it, `batch` points per body."""
    base_ns = (time.time_ns() // 1_000_000 - points - 60_000) * 1_000_000
    lines = [(f"{MEASUREMENT},device=d{i % devices},gateway=gw-bench,pilot={PILOT} "
              f"pm25={10.0 + i % 7!r},pm10={20.0 + i % 5!r},no2={30.0 + i % 11!r},"
              f"o3={40.0 + i % 3!r},temperature={15.0 + i % 13!r},ingest_delay_s=0.0125 "
              f"{base_ns + (i // devices) * 1_000_000}").encode() for i in range(points)]
    return [gzip.compress(b"\n".join(lines[s:s + batch]), compresslevel=6)
            for s in range(0, points, batch)]


async def _post_all(base_url: str, database: str, bodies: list[bytes],
                    connections: int) -> None:
    queue = list(reversed(bodies))
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=60,
                                 trust_env=False) as client:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                r = await client.post("/write", content=body, headers=headers,
                                      params={"db": database, "precision": "ns"})
                if r.status_code != 204:
                    raise BenchError(f"InfluxDB answered {r.status_code}: {r.text[:200]}")
        async with asyncio.TaskGroup() as tg:
            for _ in range(connections):
                tg.create_task(worker())


def influx(rig: Rig, points: int, batch: int = 5000, connections: int = 2) -> dict[str, Any]:
    """Raw InfluxDB ingest of pre-encoded line protocol (not counting the encoding)."""
    database = f"bench_ceiling_{_unique()}"
    rig.create_database(database)
    bodies = _line_batches(points, batch)
    influx_cpu = cpu_seconds(rig.server_pids()["influxd"])
    t0 = time.time()
    asyncio.run(_post_all(rig.influx.http, database, bodies, connections))
    seconds = time.time() - t0
    stored = rig.count(database)
    if stored != points:
        raise BenchError(f"InfluxDB holds {stored} of the {points} points written")
    return {"points": points, "batch": batch, "connections": connections,
            "seconds": seconds, "points_s": points / seconds,
            "influxd_cpu_s": cpu_seconds(rig.server_pids()["influxd"]) - influx_cpu}
