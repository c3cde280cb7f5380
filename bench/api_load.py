"""`python -m bench.api_load`: the HTTP API under 50 concurrent clients (a benchmark, not a test).

A private InfluxDB holds the simulated pilot of `bench.kpi_bench` (`--devices`, `--days`,
rolled up as the rollup worker would), a real `citypilot api` process serves it, and `wrk`
(Debian's `wrk`, a C load generator: `apt-get install wrk`; `make bench` installs it) keeps
`--connections` connections busy for `--duration` seconds, each request the next of a fixed
mix: every KPI of the catalogue for the last month at day grain, and 24-hour one-minute series
of one metric for a few devices (`/api/v1/readings`). A `--warmup` run first, so the figures
are of a running service, not of its first calls. Prints requests/s, p50/p90/p99 latency,
and the errors (non-2xx answers, socket errors); exit 1 on any error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from api.kpis.definitions import KPIS
from bench.kpi_bench import PILOT, TZ, layout, load_and_roll, register
from bench.report import RESULTS_DIR
from tests.servers import InfluxDB, free_port

LUA = """
paths = {%s}
i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Authorization"] = "Bearer %s"})
end
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.api_load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--devices", type=int, default=200, help="simulated devices (200)")
    p.add_argument("--days", type=int, default=35, help="days of history (35)")
    p.add_argument("--connections", type=int, default=50, help="concurrent clients (50)")
    p.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    p.add_argument("--duration", type=int, default=60, help="seconds measured (60)")
    p.add_argument("--warmup", type=int, default=10, help="seconds before measuring (10)")
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help="where the JSON goes")
    args = p.parse_args(argv)
    for name in ("devices", "days", "connections", "threads", "duration"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be at least 1")
    return args


def paths(end: datetime) -> list[str]:
    """The request mix: every KPI for the last month (day grain), and readings series."""
    month = {"pilot": PILOT, "start": (end - timedelta(days=30)).isoformat(),
             "end": end.isoformat(), "grain": "day"}
    out = [f"/api/v1/kpis/{k.id}?{urlencode(month)}" for k in KPIS]
    for device in ("air0", "air1", "air2", "air3"):
        day = {"pilot": PILOT, "kind": "air_quality", "metric": "no2", "device": device,
               "start": (end - timedelta(days=1)).isoformat(), "end": end.isoformat(),
               "every": "60"}
        out.append(f"/api/v1/readings?{urlencode(day)}")
    return out


def wrk(url: str, script: Path, args: argparse.Namespace, seconds: int) -> dict[str, Any]:
    argv = ["wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
            "-d", f"{seconds}s", "--timeout", "30s", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {"raw": out, **parse_wrk(out)}


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def parse_wrk(out: str) -> dict[str, Any]:
    """wrk 4.1's summary: latency percentiles (ms), requests, requests/s, errors."""
    pct = {f"p{p}_ms": _ms(v) for p, v in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", out, re.M)}
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    socket = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                       out)
    return {**pct, "requests": requests, "requests_s": rps,
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(map(int, socket.groups())) if socket else 0}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        sys.stderr.write("bench.api_load needs wrk (apt-get install wrk)\n")
        return 2
    end = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    devices = layout(args.devices)
    with tempfile.TemporaryDirectory(prefix="api-load-") as tmp:
        influx = InfluxDB(Path(tmp) / "influxdb")
        influx.start()
        api: subprocess.Popen[bytes] | None = None
        try:
            catalog_url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
            key = register(catalog_url, devices)
            loaded = asyncio.run(load_and_roll(influx, "load", devices, start, args.days,
                                               catalog_url))
            port = free_port()
            env = {**os.environ, "CITYPILOT_STORE_URL": influx.url("load"),
                   "CITYPILOT_CATALOG_URL": catalog_url}
            env.pop("CITYPILOT_CONFIG", None)
            with (Path(tmp) / "api.log").open("wb") as log:
                api = subprocess.Popen([sys.executable, "-m", "citypilot", "api", "--host",
                                        "127.0.0.1", "--port", str(port)], env=env,
                                       stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not _ready(url):
                if time.monotonic() > deadline or api.poll() is not None:
                    raise SystemExit(f"the API did not become ready:\n"
                                     f"{(Path(tmp) / 'api.log').read_text()[-2000:]}")
                time.sleep(0.2)
            mix = paths(end)
            script = Path(tmp) / "mix.lua"
            script.write_text(LUA % (", ".join(json.dumps(p) for p in mix), key))
            sys.stderr.write(f"{len(mix)} routes, {args.connections} connections: warm-up "
                             f"{args.warmup} s, then {args.duration} s measured\n")
            if args.warmup:
                wrk(url, script, args, args.warmup)
            result = wrk(url, script, args, args.duration)
            result["alone_ms"] = alone(url, mix, key)
        finally:
            if api is not None:
                api.terminate()
                api.wait(30)
            influx.stop()
    record = {"devices": args.devices, "days": args.days, "points": loaded["points"],
              "connections": args.connections, "duration_s": args.duration,
              "routes": len(mix), "load_avg_1m": os.getloadavg()[0], **result}
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / f"api-load-{time.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps(record, indent=1))
    sys.stdout.write(
        f"{args.connections} clients, {len(mix)} routes (every KPI for a month, 24-hour "
        f"1-minute series), {args.duration} s: {result['requests_s']:,.0f} requests/s, "
        f"p50 {result.get('p50_ms', float('nan')):.1f} ms, "
        f"p99 {result.get('p99_ms', float('nan')):.1f} ms, "
        f"errors {result['non_2xx'] + result['socket_errors']} of {result['requests']:,} "
        f"(load average {record['load_avg_1m']:.2f})\n")
    slowest = sorted(result["alone_ms"].items(), key=lambda kv: -kv[1])[:5]
    sys.stdout.write("slowest routes alone: " + ", ".join(f"{p} {ms:.0f} ms" for p, ms in
                                                           slowest) + "\n")
    return 0 if result["non_2xx"] + result["socket_errors"] == 0 else 1


def alone(url: str, mix: list[str], key: str) -> dict[str, float]:
    """Each route's latency with no other client (ms): which routes make the tail."""
    out: dict[str, float] = {}
    with httpx.Client(base_url=url, trust_env=False, timeout=60,
                      headers={"Authorization": f"Bearer {key}"}) as client:
        for path in mix:
            began = time.perf_counter()
            client.get(path).raise_for_status()
            out[path.split("?")[0]] = round(1000 * (time.perf_counter() - began), 1)
    return out


def _ready(url: str) -> bool:
    try:
        # /healthz: /readyz would also want a broker, which the API does not need here.
        return httpx.get(f"{url}/healthz", trust_env=False, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    raise SystemExit(main())
