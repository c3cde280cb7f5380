"""KPI latency over long history in a real InfluxDB, with rollups, and rollup lag (not a test).

    python -m bench.kpi_bench [--devices 1000] [--days 180] [--short-days 30] [--runs 10]
                              [--only kpis,lag] [--lag-rate 10000] [--lag-seconds 180]
                              [--lag-interval-s 60] [--out FILE]

`kpis`: starts a private `influxd` (the tests' process class) and writes two databases of the
same simulated pilot as line protocol (telemetry at each kind's interval, uses of five services
by a pool of pseudonymous users): `long` with `--days` of history and `short` with the last
`--short-days` of it. Builds both databases' rollups (`Worker.rebuild`, timed), registers the
pilot, then times through the HTTP API (in process, auth included) on `long`: every KPI for
the last month at day and month grain, every KPI for a whole year (the last 365 days, month
grain), and a 24-hour series of one metric at 1-minute buckets; on `short` the same month
again, so the flatness figure (p95 on `long` over p95 on `short`, per KPI) shows whether the
read cost grows with history. Each KPI's first call (a cold answer, before any cache) is
reported beside the p50/p95 of the `--runs` calls after it, with the answer's `source`.
Targets (issue 11): month p95 < 150 ms, end-user pull month < 100 ms, year < 500 ms, the
24-hour series < 50 ms, flatness < 1.5x.

`lag`: `bench.rollup_lag` — a real collector at `--lag-rate` msg/s with a real rollup worker
beside it; late probes give the time until a late write shows in the rollups (target < 60 s),
and the worker's CPU share.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from api.app import create_app
from api.catalog import Catalog, Device, Pilot, Registry, Role, Service
from api.kpis.definitions import KPIS, Family
from api.kpis.rollups.cli import open_worker
from api.options import ApiOptions
from bench import rollup_lag
from ingest.stores.naming import rollup_database
from tests.servers import InfluxDB

TZ = ZoneInfo("Europe/Lisbon")
PILOT = "bench"
S = 10**9
# kind -> (share of devices, interval s, fields)
KINDS = {"air_quality": (0.2, 600, ("no2", "pm10", "pm25")), "noise": (0.1, 300, ("noise_laeq",)),
         "parking": (0.3, 300, ("occupancy",)), "lighting": (0.1, 900, ("energy",))}
SERVICES = {"parking": 40.0, "bike_sharing": 20.0, "ev_charging": 6.0, "kiosk": 0.0,
            "city_app": 0.0}
USES_PER_DAY = 60


def layout(devices: int) -> list[Device]:
    out: list[Device] = []
    for kind, (share, interval, _) in KINDS.items():
        out += [Device(id=f"{kind[:3]}{i}", gateway=f"g{i % 25}", kind=kind,
                       interval_s=interval, capacity=20.0 if kind == "parking" else None)
                for i in range(int(devices * share))]
    names = list(SERVICES)
    rest = devices - len(out)
    out += [Device(id=f"svc{i}", gateway=f"g{i % 25}", service=names[i % len(names)],
                   interval_s=3600) for i in range(rest)]
    return out


def _value(rng: random.Random, field: str, hour: float) -> float:
    busy = 0.5 + 0.5 * max(0.0, 1 - abs(hour - 13) / 7)
    return {"no2": rng.uniform(10, 80) * busy * (4 if rng.random() < 0.002 else 1),
            "pm10": rng.uniform(10, 45) * busy, "pm25": rng.uniform(4, 25) * busy,
            "noise_laeq": rng.uniform(45, 70) * (0.8 + 0.2 * busy),
            "occupancy": min(1.0, rng.uniform(0, 1) * busy + 0.1),
            "energy": 0.0 if 7 <= hour < 18 else rng.uniform(200, 400)}[field]


def lines(devices: list[Device], start_ns: int, days: int, seed: int) -> Iterator[bytes]:
    """Line protocol for the whole history, device by device."""
    rng = random.Random(seed)
    end_ns = start_ns + days * 86400 * S
    for d in devices:
        tags = f"pilot={PILOT},gateway={d.gateway},device={d.id}"
        if d.kind:
            _, interval, fields = KINDS[d.kind]
            for ts in range(start_ns + rng.randrange(interval) * S, end_ns, interval * S):
                if rng.random() < 0.02:  # a few missed readings
                    continue
                hour = (ts // S % 86400) / 3600
                values = ",".join(f"{f}={_value(rng, f, hour):.3f}" for f in fields)
                yield (f"{d.kind},{tags} {values},ingest_delay_s={rng.expovariate(2):.3f} "
                       f"{ts}").encode()
        else:
            for day in range(days):
                for _ in range(rng.randint(USES_PER_DAY // 2, USES_PER_DAY * 3 // 2)):
                    ts = start_ns + day * 86400 * S + int(rng.triangular(6, 23, 14) * 3600 * S)
                    ts += rng.randrange(1_000_000)
                    user = f"u{int(rng.paretovariate(1.2) * 50) % 20000}"
                    kind = "use" if d.service in ("kiosk", "city_app") else "session_start"
                    yield (f"event,{tags},service={d.service},type={kind} value=1,"
                           f"user=\"{user}\",ingest_delay_s={rng.expovariate(3):.3f} {ts}"
                           ).encode()


async def load(influx: InfluxDB, database: str, devices: list[Device], start_ns: int,
               days: int) -> int:
    await _create(influx, database)
    async with httpx.AsyncClient(base_url=influx.http, timeout=120) as client:
        batch: list[bytes] = []
        written = 0
        pending: set[asyncio.Task[httpx.Response]] = set()

        async def flush(chunk: list[bytes]) -> httpx.Response:
            return await client.post("/write", params={"db": database, "precision": "ns"},
                                     content=gzip.compress(b"\n".join(chunk), 1),
                                     headers={"Content-Encoding": "gzip"})

        for line in lines(devices, start_ns, days, seed=4):
            batch.append(line)
            if len(batch) == 10_000:
                pending.add(asyncio.create_task(flush(batch)))
                written, batch = written + len(batch), []
                if len(pending) >= 4:
                    done, pending = await asyncio.wait(pending,
                                                       return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        task.result().raise_for_status()
        if batch:
            pending.add(asyncio.create_task(flush(batch)))
            written += len(batch)
        for task in pending:
            (await task).raise_for_status()
    return written


def wait_for_tsm(data: Path, timeout_s: float = 120.0) -> float:
    """Wait until every shard holds a TSM file and the set of files stops changing."""
    began = time.monotonic()
    last: list[str] = []
    while time.monotonic() - began < timeout_s:
        shards = [d for d in data.glob("*/autogen/*") if d.is_dir()]
        files = sorted(str(f) for f in data.glob("*/autogen/*/*.tsm"))
        if shards and all(any(s.glob("*.tsm")) for s in shards) and files == last:
            break
        last = files
        time.sleep(2.0)
    return time.monotonic() - began


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))]


@dataclass(frozen=True, slots=True)
class Case:
    name: str
    period: tuple[datetime, datetime]
    grain: str
    pull_ms: float
    other_ms: float


async def measure(store_url: str, catalog_url: str, key: str, cases: list[Case],
                  runs: int, series_end: datetime | None) -> dict[str, dict[str, Any]]:
    app = create_app(ApiOptions(store_url=store_url, catalog_url=catalog_url))
    results: dict[str, dict[str, Any]] = {}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for case in cases:
            params = {"pilot": PILOT, "start": case.period[0].isoformat(),
                      "end": case.period[1].isoformat(), "grain": case.grain}
            for kpi in KPIS:
                target = case.pull_ms if kpi.family is Family.PULL else case.other_ms
                first, source, samples = await timed(client, f"/api/v1/kpis/{kpi.id}",
                                                     params, key, runs)
                name = f"{case.name}/{kpi.id}/{case.grain}"
                results[name] = {**_stats(samples, target), "first_ms": 1000 * first,
                                 "source": source}
                _print(name, results[name])
        if series_end is not None:
            series = {"pilot": PILOT, "kind": "air_quality", "metric": "no2",
                      "device": "air0", "start": (series_end - timedelta(days=1)).isoformat(),
                      "end": series_end.isoformat(), "every": "60"}
            first, source, samples = await timed(client, "/api/v1/readings", series, key,
                                                 max(runs, 20))
            results["readings_24h_1min"] = {**_stats(samples, 50), "first_ms": 1000 * first,
                                            "source": source}
            _print("readings_24h_1min", results["readings_24h_1min"])
    return results


async def timed(client: httpx.AsyncClient, path: str, params: dict[str, str], key: str,
                runs: int) -> tuple[float, str, list[float]]:
    """The first call's seconds and answer source, then `runs` more calls' seconds."""
    headers = {"Authorization": f"Bearer {key}"}
    began = time.perf_counter()
    response = await client.get(path, params=params, headers=headers)
    first = time.perf_counter() - began
    if response.status_code != 200:  # a figure of its own: say it and go on
        return first, f"HTTP {response.status_code}: {response.text[:200]}", []
    body = response.json()
    source = str(body.get("source", "-")) if isinstance(body, dict) else "-"
    out: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        out.append(time.perf_counter() - began)
        response.raise_for_status()
    return first, source, out


def _stats(samples: list[float], target_ms: float) -> dict[str, Any]:
    if not samples:  # the first call failed (its `source` says how)
        return {"p50_ms": None, "p95_ms": None, "target_ms": target_ms, "runs": 0}
    return {"p50_ms": 1000 * statistics.median(samples), "p95_ms": 1000 * p95(samples),
            "target_ms": target_ms, "runs": len(samples)}


def _over(r: dict[str, Any]) -> bool:
    return r["p95_ms"] is None or r["p95_ms"] >= r["target_ms"]


def _print(name: str, r: dict[str, Any]) -> None:
    if r["p95_ms"] is None:
        sys.stderr.write(f"FAIL {name:<44} first {r['first_ms']:8.1f} ms: {r['source']}\n")
        return
    ok = "OVER" if _over(r) else "ok "
    sys.stderr.write(f"{ok} {name:<44} first {r['first_ms']:8.1f}  p50 {r['p50_ms']:8.1f}  "
                     f"p95 {r['p95_ms']:8.1f} ms (target {r['target_ms']:.0f}) "
                     f"{r['source']}\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--short-days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--only", default="kpis,lag", help="parts to run: kpis, lag")
    parser.add_argument("--lag-rate", type=float, default=10_000.0)
    parser.add_argument("--lag-seconds", type=float, default=180.0)
    parser.add_argument("--lag-interval-s", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    parts = {p.strip() for p in args.only.split(",") if p.strip()}
    if unknown := parts - {"kpis", "lag"}:
        parser.error(f"--only: unknown part {', '.join(sorted(unknown))} (kpis, lag)")
    if args.short_days > args.days:
        parser.error("--short-days must not exceed --days")
    summary: dict[str, Any] = {}
    failed = False
    with tempfile.TemporaryDirectory(prefix="kpi-bench-") as tmp:
        if "kpis" in parts:
            # History is on disk in TSM files, not in the write cache: let InfluxDB snapshot
            # the cache soon after the load (its default waits 10 minutes).
            influx = InfluxDB(Path(tmp) / "influxdb",
                              data={"cache-snapshot-write-cold-duration": '"2s"'})
            influx.start()
            try:
                summary["kpis"] = _run(args, influx, Path(tmp))
            finally:
                influx.stop()
            failed |= bool(summary["kpis"]["over_target"])
        if "lag" in parts:
            sys.stderr.write(f"rollup lag at {args.lag_rate:,.0f} msg/s for "
                             f"{args.lag_seconds:.0f} s, a pass every {args.lag_interval_s:g} s"
                             "\n")
            lag = rollup_lag.run(Path(tmp) / "lag", args.lag_rate, args.lag_seconds,
                                 args.lag_interval_s)
            summary["lag"] = lag
            sys.stderr.write(json.dumps(lag, indent=1) + "\n")
            failed |= not lag["probe_lag_max_s"] < 60
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    sys.stdout.write(json.dumps({"over_target": summary.get("kpis", {}).get("over_target"),
                                 "flatness_max": summary.get("kpis", {}).get("flatness_max"),
                                 "probe_lag_max_s": summary.get("lag", {}).get(
                                     "probe_lag_max_s")}) + "\n")
    return 1 if failed else 0


async def load_and_roll(influx: InfluxDB, database: str, devices: list[Device],
                         start: datetime, days: int, catalog_url: str) -> dict[str, float]:
    began = time.perf_counter()
    points = await load(influx, database, devices, int(start.timestamp()) * S, days)
    load_s = time.perf_counter() - began
    sys.stderr.write(f"{database}: wrote {points:,} points for {len(devices)} devices over "
                     f"{days} days in {load_s:.1f} s\n")
    await _create(influx, rollup_database(database))
    began = time.perf_counter()

    def progress(pilot: str, done: int, total: int) -> None:
        if done == total or done % 168 == 0:
            sys.stderr.write(f"{database}: rollup rebuild {done}/{total} hours "
                             f"({time.perf_counter() - began:.0f} s)\n")
    async with open_worker(influx.url(database), catalog_url, 120.0) as worker:
        done = await worker.rebuild(None, None, progress)
    rebuild_s = time.perf_counter() - began
    sys.stderr.write(f"{database}: rollups of {done.slots} hours and {done.days} days built in "
                     f"{rebuild_s:.1f} s\n")
    return {"points": points, "load_s": load_s, "rebuild_s": rebuild_s,
            "rebuild_hours": done.slots}


async def _create(influx: InfluxDB, database: str) -> None:
    async with httpx.AsyncClient(base_url=influx.http, timeout=30) as client:
        (await client.post("/query", data={"q": f'CREATE DATABASE "{database}"'})
         ).raise_for_status()


def register(catalog_url: str, devices: list[Device]) -> str:
    """Register the simulated pilot in a fresh catalogue; an operator key (readings need
    one)."""
    catalog = Catalog(catalog_url)
    catalog.load(Registry(pilots=(Pilot(
        id=PILOT, timezone=TZ.key, population=120_000, lighting_baseline_kwh_per_day=400.0,
        devices=tuple(devices),
        services=tuple(Service(id=s, capacity=c or None) for s, c in SERVICES.items())),)))
    _, key = catalog.create_key("bench", Role.OPERATOR)
    catalog.close()
    return key


def _run(args: argparse.Namespace, influx: InfluxDB, tmp: Path) -> dict[str, Any]:
    # The history: the last `days` local days before today.
    end = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)

    def days_before(n: int) -> datetime:
        return (end - timedelta(days=n)).replace(tzinfo=None).replace(tzinfo=TZ)
    devices = layout(args.devices)
    catalog_url = f"sqlite:///{tmp / 'catalog.db'}"
    key = register(catalog_url, devices)
    stores = {}
    for database, days in (("long", args.days), ("short", args.short_days)):
        stores[database] = asyncio.run(load_and_roll(influx, database, devices,
                                                      days_before(days), days, catalog_url))
    settle_s = wait_for_tsm(influx.workdir / "data")
    sys.stderr.write(f"cache snapshotted to TSM after {settle_s:.1f} s\n")
    month = (days_before(30), end)
    year = (days_before(365), end)
    results = {"long": asyncio.run(measure(
        influx.url("long"), catalog_url, key,
        [Case("month", month, "day", 100, 150), Case("month", month, "month", 100, 150),
         Case("year", year, "month", 500, 500)], args.runs, end)),
        "short": asyncio.run(measure(
            influx.url("short"), catalog_url, key,
            [Case("month", month, "day", 100, 150), Case("month", month, "month", 100, 150)],
            args.runs, None))}
    flatness = {name: r["p95_ms"] / results["short"][name]["p95_ms"]
                for name, r in results["long"].items()
                if r["p95_ms"] and (results["short"].get(name) or {}).get("p95_ms")}
    # The repeated calls of a finished period come from the result cache: the first call's
    # ratio is the one that shows whether reading grows with history.
    cold = {name: r["first_ms"] / results["short"][name]["first_ms"]
            for name, r in results["long"].items() if name in results["short"]}
    sys.stderr.write(f"flatness of the first (uncached) calls: max {max(cold.values()):.2f}x, "
                     f"median {statistics.median(cold.values()):.2f}x\n")
    flat_max = max(flatness.values())
    sys.stderr.write(f"flatness (p95 with {args.days} days / with {args.short_days} days): "
                     f"max {flat_max:.2f}x, median {statistics.median(flatness.values()):.2f}x"
                     f" (target < 1.5x)\n")
    over = [name for name, r in results["long"].items() if _over(r)]
    return {"devices": len(devices), "days": args.days, "short_days": args.short_days,
            "stores": stores, "period_month": [month[0].isoformat(), month[1].isoformat()],
            "period_year": [year[0].isoformat(), year[1].isoformat()], "results": results,
            "flatness": flatness, "flatness_max": flat_max, "flatness_first": cold,
            "over_target": over + (["flatness"] if flat_max >= 1.5 else [])}


if __name__ == "__main__":
    raise SystemExit(main())
