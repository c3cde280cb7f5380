"""Benchmark: messages/s that one `citypilot simulate` process publishes (not a test).

Starts Mosquitto on a free port (the test fixture's server class), simulates 10,000 devices
(10 pilots x 10 gateways x 100 devices) with `--rate 0` (as fast as the broker acknowledges),
and prints the acknowledged messages per second of wall time and per CPU-second of this
process. The CPU figure is the one to compare across machines: on a shared machine the wall
figure also measures the neighbours. With `--receive-maximum N` Mosquitto announces a
Receive Maximum of N instead of its stock 20 (`max_inflight_messages`).

    .venv/bin/python -m bench.simulate_bench [--seconds 20] [--receive-maximum 20]
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script, too

from simulators.runner import Progress, SimulateOptions, run
from tests.servers import Mosquitto

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pilots", type=int, default=10)
    parser.add_argument("--gateways", type=int, default=10, help="per pilot")
    parser.add_argument("--devices", type=int, default=100, help="per gateway")
    parser.add_argument("--seconds", type=float, default=20.0, help="publishing time")
    parser.add_argument("--faults", type=float, default=0.0)
    parser.add_argument("--receive-maximum", type=int, default=0,
                        help="Mosquitto's max_inflight_messages (0: its default, 20)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="simbench-") as tmp:
        extra = f"max_inflight_messages {args.receive_maximum}\n" if args.receive_maximum else ""
        broker = Mosquitto(Path(tmp) / "mosquitto", extra_conf=extra)
        broker.start()
        try:
            options = SimulateOptions(pilots=args.pilots, gateways=args.gateways,
                                      devices=args.devices, rate=0.0,
                                      duration_s=args.seconds, faults=args.faults,
                                      mqtt_url=broker.url)
            first: list[float] = []  # when the first publish went out: setup is done

            def seen(p: Progress) -> None:
                if p.published and not first:
                    first.append(time.perf_counter())

            wall, cpu = time.perf_counter(), time.process_time()
            summary = run(options, progress=seen)
            end = time.perf_counter()
            wall, cpu = end - wall, time.process_time() - cpu
        finally:
            broker.stop()

    devices = summary.meta["devices"]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"devices: {devices:,} (+{summary.meta['gateways']} gateways), "
          f"MQTT {summary.meta['protocol']}, faults {args.faults:g}")
    publishing = end - first[0] if first else wall
    print(f"acknowledged: {summary.acked:,} messages in {wall:.1f} s, of which "
          f"{wall - publishing:.1f} s building the fleet")
    print(f"publish rate: {summary.acked / publishing:,.0f} msg/s while publishing, "
          f"{summary.acked / wall:,.0f} msg/s overall, "
          f"{summary.acked / cpu:,.0f} msg per CPU-second ({cpu / wall:.0%} of a core), "
          f"peak RSS {rss_mb:,.0f} MiB")
    return 0 if summary.acked == summary.published else 1


if __name__ == "__main__":
    raise SystemExit(main())
