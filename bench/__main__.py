"""`python -m bench` (`make bench`): ceilings, then citypilot's scenarios, then the table.

Progress goes to stderr, the table to stdout, the full record (every figure, the CPU seconds
of each process, RSS samples, profiles) to bench/results/bench-<time>.json and latest.json.
`--quick` is a smoke run (smaller loads, under two minutes); `--only A,C` picks scenarios;
`--profile` samples the collector with py-spy in each scenario and prints where its time goes.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import ceilings, profile, report, scenarios
from bench.rig import BenchError, Rig, machine_busy_cores

log = logging.getLogger("bench")

Scenario = Callable[[Rig, scenarios.Sizes, Path | None], dict[str, Any]]
SCENARIOS: dict[str, Scenario] = {
    "A": scenarios.scenario_a, "B": scenarios.scenario_b,
    "C": scenarios.scenario_c, "D": scenarios.scenario_d, "A2": scenarios.scenario_a2,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller loads (smoke run)")
    parser.add_argument("--only", default="A,B,C,D",
                        help="scenarios to run, e.g. A,B; A2 (A through two collectors in a "
                        "shared subscription) runs only when named")
    parser.add_argument("--profile", action="store_true",
                        help="sample the collector with py-spy (pip install py-spy)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (server and collector logs)")
    parser.add_argument("--results", type=Path, default=report.RESULTS_DIR,
                        help="where the JSON record goes (default: bench/results)")
    parser.add_argument("--wait-idle", type=float, default=60.0, metavar="SECONDS",
                        help="first wait up to SECONDS (default 60; 0: no wait) for the "
                        "machine to be idle (other processes below 0.3 cores): a shared "
                        "machine skews every figure")
    args = parser.parse_args(argv)
    args.only = [s.strip().upper() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in args.only if s not in SCENARIOS]
    if unknown:
        parser.error(f"--only: unknown scenario {', '.join(unknown)} "
                     f"(choose from {', '.join(SCENARIOS)})")
    return args


def wait_idle(limit_s: float) -> float:
    """The machine's busy cores over 2 s; with a limit, sampled again until below 0.3."""
    deadline = time.monotonic() + limit_s
    while True:
        busy = machine_busy_cores(2.0)
        if busy < 0.3 or time.monotonic() >= deadline:
            return busy
        log.info("machine busy (%.2f cores in use by other processes); waiting", busy)


def run_ceilings(rig: Rig, sizes: scenarios.Sizes) -> dict[str, Any]:
    log.info("ceiling: mosquitto_pub -> mosquitto_sub, %d messages", sizes.broker_msgs)
    broker = ceilings.broker(rig, sizes.broker_msgs)
    log.info("  %.0f msg/s", broker["msgs_s"])
    log.info("ceiling: bare paho subscriber, %d messages", sizes.paho_msgs)
    paho = ceilings.paho(rig, sizes.paho_msgs)
    log.info("  %.0f msg/s", paho["msgs_s"])
    log.info("ceiling: bare paho subscriber, MQTT 3.1.1, %d messages", sizes.paho_msgs)
    paho311 = ceilings.paho(rig, sizes.paho_msgs, protocol="3.1.1")
    log.info("  %.0f msg/s", paho311["msgs_s"])
    log.info("ceiling: InfluxDB raw line protocol, %d points", sizes.influx_points)
    influx = ceilings.influx(rig, sizes.influx_points)
    log.info("  %.0f points/s", influx["points_s"])
    return {"broker": broker, "paho": paho, "paho_311": paho311, "influx": influx}


def run_scenarios(rig: Rig, args: argparse.Namespace, sizes: scenarios.Sizes,
                  profiles_dir: Path | None) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for name in args.only:
        log.info("scenario %s ...", name)
        started = time.monotonic()
        try:
            results[name] = SCENARIOS[name](rig, sizes, profiles_dir)
        except BenchError as exc:
            log.error("scenario %s failed: %s", name, exc)
            results[name] = None
            continue
        log.info("scenario %s done in %.0f s: %s", name, time.monotonic() - started,
                 _headline(name, results[name]))
        if profiles_dir is not None:
            raw = profiles_dir / f"profile-{name}.txt"
            if raw.exists():
                results[name]["profile"] = profile.summarise(raw)
    return results


def _headline(name: str, r: dict[str, Any]) -> str:
    if name in ("A", "A2", "B"):
        return f"{r['msgs_s']:,.0f} msg/s, {r['readings_s']:,.0f} readings/s"
    if name == "C":
        return f"p50 {r['p50_s']:.3f} s, p99 {r['p99_s']:.3f} s"
    return f"peak RSS {r['peak_rss_mb']:.0f} MB, lost {r['lost']}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s bench: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    sizes = scenarios.QUICK if args.quick else scenarios.FULL
    busy = wait_idle(args.wait_idle)
    log.info("other processes use %.2f cores before the start", busy)
    started = time.time()
    before = {**report.machine(), "busy_cores_before": busy}
    tmp = Path(tempfile.mkdtemp(prefix="citypilot-bench-"))
    profiles_dir = args.results / "profiles" if args.profile else None
    try:
        with Rig(tmp) as rig:
            ceiling = {"before": run_ceilings(rig, sizes)}
            results = run_scenarios(rig, args, sizes, profiles_dir)
            log.info("ceilings again, after the scenarios")
            ceiling["after"] = run_ceilings(rig, sizes)
    except BenchError as exc:
        log.error("%s", exc)
        return 1
    finally:
        if args.keep:
            log.info("logs kept in %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return _finish(args, sizes, ceiling, results, before, started)


def _finish(args: argparse.Namespace, sizes: scenarios.Sizes, ceiling: dict[str, Any],
            results: dict[str, Any], before: dict[str, Any], started: float) -> int:
    best = report.best_ceilings(ceiling["before"], ceiling["after"])
    ok = {k: v for k, v in results.items() if v is not None}
    rows = [*report.ceiling_rows(ceiling["before"], ceiling["after"]),
            *report.throughput_rows(ok, best), *report.latency_rows(ok),
            *report.outage_rows(ok), *report.resource_rows(ok)]
    mode = "quick" if args.quick else "full"
    print(f"citypilot ingest benchmark: python -m bench {' '.join(sys.argv[1:])}".rstrip())
    print(f"({mode}; {before['cpus']} CPUs; other processes used "
          f"{before['busy_cores_before']:.2f} cores at the start; code {before['code']})")
    print(report.render(rows))
    for name, r in ok.items():
        if "profile" in r:
            print(profile.render(name, r["profile"]))
    path = report.save({"mode": mode, "sizes": dataclasses.asdict(sizes),
                        "machine_before": before, "machine_after": report.machine(),
                        "seconds": time.time() - started, "ceilings": ceiling,
                        "scenarios": results}, args.results)
    log.info("record: %s (%.0f s in all)", path, time.time() - started)
    return 0 if len(ok) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
