"""The system under test: one `python -m citypilot collect` process, configured through
`CITYPILOT_*` variables as an operator would, with its `/metrics` port on.

The benchmark reads its memory from /proc (VmRSS now, VmHWM the kernel's high-water mark, so a
peak between two samples is not missed), its CPU time through psutil, and its counters from
`/metrics`. With a profile directory, py-spy samples it for the whole scenario.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from bench.rig import BenchError, Rig, cpu_seconds
from tests.servers import free_port

log = logging.getLogger(__name__)


def proc_status_kb(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status (VmRSS, VmHWM); 0 when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def read_metrics(http: httpx.Client) -> dict[str, float]:
    """A process's /metrics: its counters and gauges, labelled series summed per name ({}
    while it does not answer)."""
    try:
        text = http.get("/metrics").text
    except httpx.HTTPError:
        return {}
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        base = name.split("{", 1)[0]
        try:
            out[base] = out.get(base, 0.0) + float(value)
        except ValueError:
            continue
    return out


class Collector:
    """`citypilot collect` as a child process; a context manager that SIGTERMs it."""

    def __init__(self, rig: Rig, name: str, database: str, *, profile_dir: Path | None = None,
                 **env: str) -> None:
        self.rig, self.name, self.database = rig, name, database
        self.workdir = rig.root / f"collector-{name}"
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "collector.log"
        self.metrics_port = free_port()
        self.env = {**os.environ, "CITYPILOT_MQTT_URL": rig.mosquitto.url,
                    "CITYPILOT_STORE_URL": rig.store_url(database),
                    "CITYPILOT_MQTT_CLIENT_ID": f"bench-{name}",
                    "CITYPILOT_SPOOL_DIR": str(self.workdir / "spool"),
                    "CITYPILOT_METRICS_PORT": str(self.metrics_port), **env}
        self.env.pop("CITYPILOT_CONFIG", None)
        self.proc: subprocess.Popen[bytes] | None = None
        self.profile_dir = profile_dir
        self._spy: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.metrics_port}", timeout=5,
                                 trust_env=False)

    def __enter__(self) -> Self:
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "citypilot", "collect"],
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=self.workdir)
        self._wait_ready()
        if self.profile_dir is not None:
            self._start_profiler(self.profile_dir)
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop_profiler()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                log.warning("collector %s ignored SIGTERM for 60 s; killed", self.name)
                self.proc.kill()
                self.proc.wait(10)
        self.http.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        """Until `/readyz` says the subscription is in place."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"collector exited with {self.proc.returncode}:\n"
                                 f"{self.log_tail()}")
            try:
                if self.http.get("/readyz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise BenchError(f"collector not ready after {timeout_s:g} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- what the benchmark reads ---------------------------------------------------------
    def metrics(self) -> dict[str, float]:
        """The collector's counters and gauges (labelled series summed per name)."""
        return read_metrics(self.http)

    def rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmRSS") / 1024

    def peak_rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmHWM") / 1024

    def cpu_s(self) -> float:
        return cpu_seconds(self.pid)

    # -- profiling ------------------------------------------------------------------------
    def _start_profiler(self, directory: Path) -> None:
        spy = Path(sys.executable).with_name("py-spy")
        if not spy.exists():
            raise BenchError(f"--profile needs py-spy: {Path(sys.executable).parent}/pip "
                             "install py-spy")
        directory.mkdir(parents=True, exist_ok=True)
        self.profile_path = directory / f"profile-{self.name}.txt"
        self._spy = subprocess.Popen(
            [str(spy), "record", "--pid", str(self.pid), "--rate", "200", "--format", "raw",
             "--gil", "--threads", "--nonblocking", "--output", str(self.profile_path)],
            stdout=subprocess.DEVNULL, stderr=(directory / f"py-spy-{self.name}.log").open("wb"))

    @property
    def profiler_pid(self) -> int | None:
        return self._spy.pid if self._spy is not None else None

    def stop_profiler(self) -> None:
        spy, self._spy = self._spy, None
        if spy is None:
            return
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait(5)


class RssSampler:
    """Samples a collector's RSS every `interval_s` in a thread, for a memory-over-time view."""

    def __init__(self, collector: Collector, interval_s: float = 0.5) -> None:
        self.collector, self.interval_s = collector, interval_s
        self.samples: list[tuple[float, float]] = []  # (seconds since start, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._t0 = time.monotonic()
        self.started_wall = time.time()

    def __enter__(self) -> Self:
        self._t0 = time.monotonic()
        self.started_wall = time.time()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - self._t0, self.collector.rss_mb()))
            self._stop.wait(self.interval_s)

    @property
    def peak_mb(self) -> float:
        return max((mb for _, mb in self.samples), default=0.0)

    def max_between(self, start_wall: float, end_wall: float) -> float:
        """The highest sample taken between two wall-clock times."""
        lo, hi = start_wall - self.started_wall, end_wall - self.started_wall
        return max((mb for t, mb in self.samples if lo <= t <= hi), default=0.0)
