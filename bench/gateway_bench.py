"""Footprint of the gateway agent on a Pi-sized load: `citypilot gateway --simulate 20
--rate 100` for N seconds against a local Mosquitto; peak RSS and CPU share of one core.

Run on purpose: `.venv/bin/python -m bench.gateway_bench [--seconds 30]`. Targets (issue):
under 60 MB RSS and a few % of one core at 100 readings/s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.servers import Mosquitto


def sample(pid: int) -> tuple[float, float]:
    """(RSS MB, CPU seconds) of a process from /proc."""
    with open(f"/proc/{pid}/status") as f:
        rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=100.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mosquitto")
        broker.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPILOT_")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "citypilot", "gateway", "--pilot", "bench", "--gateway",
             "gw", "--upstream", broker.url, "--simulate", "20", "--rate", str(args.rate),
             "--duration", f"{args.seconds}s", "--spool-dir", f"{tmp}/spool",
             "--summary-json", f"{tmp}/summary.json"], env=env, cwd=tmp,
            stderr=subprocess.DEVNULL)
        time.sleep(3)  # past start-up (imports), which is not the steady state
        rss0, cpu0 = sample(proc.pid)
        t0, peak = time.monotonic(), rss0
        while proc.poll() is None:
            try:
                rss, cpu = sample(proc.pid)
            except (FileNotFoundError, StopIteration, ProcessLookupError):
                break
            peak, last = max(peak, rss), (time.monotonic(), cpu)
            time.sleep(0.5)
        share = (last[1] - cpu0) / (last[0] - t0)
        broker.stop()
        summary = Path(f"{tmp}/summary.json").read_text()
    print(f"gateway agent, 20 simulated devices at {args.rate:g} msg/s for {args.seconds:g} s:")
    print(f"  peak RSS {peak:.1f} MB (target < 60 MB); CPU {share * 100:.1f} % of one core")
    print(f"  summary {summary}")


if __name__ == "__main__":
    main()
