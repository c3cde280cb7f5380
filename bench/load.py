"""What the benchmark publishes, and the C publishers that publish it.

Payloads are native telemetry with five values (the shape of `tests/collectors.py`'s
`reading()`), one reading per message or arrays of readings. Every reading of a device gets
its own millisecond timestamp, so no two readings collapse into one point and the stored count
must equal the number published.

The load comes from `mosquitto_pub -l` processes (one per device topic, QoS 1): each line on
their stdin is one message, so the publisher spends no Python CPU and the benchmark can pace
it by writing lines at a fixed rate. Stdin stays open until the benchmark has seen every
message arrive: mosquitto_pub 2.0.11 drops messages still queued when stdin reaches EOF.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Sequence

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.rig import MEASUREMENT, PILOT, BenchError, Rig

log = logging.getLogger(__name__)


def topic(device: str, gateway: str = "gw-bench") -> str:
    return f"citypilot/v1/{PILOT}/{gateway}/{device}/telemetry"


def reading(ts_ms: int, i: int = 0) -> dict[str, object]:
    """One reading with 5 values, as `tests/collectors.py` builds it."""
    return {"ts": ts_ms, "kind": MEASUREMENT, "values": {
        "pm25": 10 + i % 7, "pm10": 20 + i % 5, "no2": 30 + i % 11, "o3": 40 + i % 3,
        "temperature": 15 + i % 13}}


def single_lines(count: int, base_ms: int) -> list[bytes]:
    """`count` one-reading messages, one per line, timestamps base_ms, base_ms + 1, ..."""
    return [orjson.dumps(reading(base_ms + i, i)) + b"\n" for i in range(count)]


def array_lines(count: int, per_message: int, base_ms: int) -> list[bytes]:
    """`count` messages that each carry an array of `per_message` readings."""
    return [orjson.dumps([reading(base_ms + m * per_message + j, j) for j in range(per_message)])
            + b"\n" for m in range(count)]


def past_base_ms(readings_per_device: int) -> int:
    """A start timestamp such that the last reading is still a minute in the past."""
    return time.time_ns() // 1_000_000 - readings_per_device - 60_000


class CPublishers:
    """One `mosquitto_pub -l -q 1` per topic; a context manager that closes them."""

    def __init__(self, rig: Rig, topics: Sequence[str], tag: str, max_inflight: int = 1000
                 ) -> None:
        self.rig, self.topics, self.tag = rig, list(topics), tag
        self.max_inflight = max_inflight
        self.procs: list[subprocess.Popen[bytes]] = []
        self.sent = [0] * len(self.topics)

    def __enter__(self) -> CPublishers:
        ids = [f"{self.tag}-{i}" for i in range(len(self.topics))]
        for client_id, t in zip(ids, self.topics, strict=True):
            argv = ["mosquitto_pub", *self.rig.mqtt_host_port, "-q", "1", "-t", t, "-l",
                    "-M", str(self.max_inflight), "-i", client_id]
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.PIPE,
                                               stdout=subprocess.DEVNULL))
        self.rig.wait_broker_log([f"as {i} " for i in ids])
        return self

    def __exit__(self, *exc: object) -> None:
        for p in self.procs:
            try:
                if p.stdin is not None:
                    p.stdin.close()
            except BrokenPipeError:
                pass
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def write(self, index: int, data: bytes, lines: int) -> None:
        stdin = self.procs[index].stdin
        if stdin is None or self.procs[index].poll() is not None:
            raise BenchError(f"mosquitto_pub {self.tag}-{index} is gone")
        stdin.write(data)
        stdin.flush()
        self.sent[index] += lines

    def feed_all(self, lines: Sequence[Sequence[bytes]]) -> float:
        """Hand every publisher all its lines at once (as fast as it takes them), in
        threads; returns the wall-clock time the first line was handed over."""
        threads = [threading.Thread(target=self.write, args=(i, b"".join(chunk), len(chunk)),
                                    name=f"feed-{i}", daemon=True)
                   for i, chunk in enumerate(lines)]
        t0 = time.time()
        for t in threads:
            t.start()
        return t0

    def feed_paced(self, lines: Sequence[Sequence[bytes]], rate: float, t0: float,
                   tick_s: float = 0.01) -> None:
        """Publish `rate` messages/s in total, spread over the publishers, from wall time
        t0 until the lines run out (blocking; run it in a thread)."""
        per_pub = rate / len(lines)
        done = [0] * len(lines)
        while any(d < len(chunk) for d, chunk in zip(done, lines, strict=True)):
            due = int((time.time() - t0) * per_pub)
            for i, chunk in enumerate(lines):
                upto = min(due, len(chunk))
                if upto > done[i]:
                    self.write(i, b"".join(chunk[done[i]:upto]), upto - done[i])
                    done[i] = upto
            time.sleep(tick_s)

    @property
    def total_sent(self) -> int:
        return sum(self.sent)


class MarkerPublisher:
    """Publishes one marker reading every `interval_s` (QoS 1, its own connection) whose `ts`
    is the wall-clock publish time in ms: the probes for publish-to-queryable latency."""

    def __init__(self, rig: Rig, device: str = "marker", interval_s: float = 0.05) -> None:
        self.topic = topic(device, gateway="gw-marker")
        self.interval_s = interval_s
        self.published: dict[int, float] = {}  # ts ms -> wall time of the publish call
        self._stop = threading.Event()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-marker")
        self.client.connect("127.0.0.1", rig.mosquitto.port, keepalive=30)
        self.client.loop_start()
        self._thread = threading.Thread(target=self._run, name="markers", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        i = 0
        while not self._stop.is_set():
            now = time.time()
            ts_ms = int(now * 1000)
            if ts_ms not in self.published:
                self.published[ts_ms] = now
                self.client.publish(self.topic, orjson.dumps(reading(ts_ms, i)), qos=1)
                i += 1
            next_at += self.interval_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()
