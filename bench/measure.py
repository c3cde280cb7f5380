"""How the scenarios measure: CPU windows, "queryable yet?" polls, marker latency, percentiles.

Everything here observes from outside, as a user could: the processes' CPU times from /proc,
the collector's `/metrics`, and InfluxDB's own answers to InfluxQL queries.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Sequence

from bench.load import MarkerPublisher
from bench.rig import BenchError, Rig, cpu_seconds, machine_busy_seconds
from bench.subject import Collector


class CpuWindow:
    """CPU seconds each process spent between `start()` and `stop()`, and `other`: what the
    rest of the machine took meanwhile (other users' work skews every figure; it is shown)."""

    def __init__(self, rig: Rig, collectors: Sequence[Collector],
                 publisher_pids: Sequence[int]) -> None:
        self.rig, self.collectors, self.publisher_pids = rig, collectors, publisher_pids
        self.begin: dict[str, float] = {}
        self.t0 = 0.0

    def _now(self) -> dict[str, float]:
        pids = self.rig.server_pids()
        own = os.times()
        return {"collector": sum(c.cpu_s() for c in self.collectors),
                "mosquitto": cpu_seconds(pids["mosquitto"]),
                "influxd": self.rig.influx_cpu_s(),
                "publishers": sum(cpu_seconds(p) for p in self.publisher_pids),
                "profiler": sum(cpu_seconds(c.profiler_pid) for c in self.collectors),
                "bench": own.user + own.system, "machine": machine_busy_seconds()}

    def start(self) -> None:
        self.begin = self._now()
        self.t0 = time.monotonic()

    def stop(self) -> dict[str, float]:
        """CPU seconds per process over the window, plus `other` and the window's length."""
        end = self._now()
        used = {k: end[k] - self.begin[k] for k in end}
        machine = used.pop("machine")
        used["other"] = max(0.0, machine - sum(used.values()))
        used["wall"] = time.monotonic() - self.t0
        return {k: round(v, 2) for k, v in used.items()}


def stored_total(collectors: Sequence[Collector]) -> float:
    return sum(c.metrics().get("citypilot_points_stored_total", 0.0) for c in collectors)


def poll_stored(rig: Rig, collectors: Sequence[Collector], database: str, expected: int,
                timeout_s: float) -> float | None:
    """Wall time at which InfluxDB first answers a count >= expected (None: not within
    timeout_s). The collectors' `stored` counters gate the costlier InfluxDB count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stored_total(collectors) >= expected:
            count = rig.count(database)
            if count is not None and count >= expected:
                return time.time()
            time.sleep(0.02)
        else:
            time.sleep(0.05)
    return None


def wait_stored(rig: Rig, collectors: Sequence[Collector], database: str, expected: int,
                timeout_s: float) -> float:
    """`poll_stored`, or BenchError naming what is missing."""
    t_end = poll_stored(rig, collectors, database, expected, timeout_s)
    if t_end is None:
        raise BenchError(f"InfluxDB holds {rig.count(database)} of {expected} points after "
                         f"{timeout_s:g} s; collector log:\n{collectors[0].log_tail()}")
    return t_end


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted values."""
    if not values:
        return float("nan")
    return values[max(1, min(len(values), math.ceil(p / 100 * len(values)))) - 1]


class MarkerPoller:
    """Polls InfluxDB for the markers and records when each first shows up."""

    def __init__(self, rig: Rig, database: str, markers: MarkerPublisher,
                 interval_s: float = 0.02) -> None:
        self.rig, self.database, self.markers = rig, database, markers
        self.interval_s = interval_s
        self.seen: dict[int, float] = {}  # ts ms -> wall time of the answer that showed it
        self.queries = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="marker-poll", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _unseen(self) -> list[int]:
        return [ts for ts in list(self.markers.published) if ts not in self.seen]

    def _run(self) -> None:
        while not self._stop.is_set():
            unseen = self._unseen()
            if unseen:
                where = f"\"device\" = 'marker' AND time >= {min(unseen) * 1_000_000}"
                found = self.rig.times(self.database, where)
                answered = time.time()
                self.queries += 1
                for ts_ns in found or []:
                    self.seen.setdefault(ts_ns // 1_000_000, answered)
            self._stop.wait(self.interval_s)

    def wait_all(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._unseen() and time.monotonic() < deadline:
            time.sleep(0.05)
        self._stop.set()
        self._thread.join(5)

    def latencies(self) -> list[float]:
        return sorted(self.seen[ts] - self.markers.published[ts] for ts in self.seen
                      if ts in self.markers.published)
