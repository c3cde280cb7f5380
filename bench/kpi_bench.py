"""KPI and readings latency over a month of simulated history in a real InfluxDB (not a test).

    python -m bench.kpi_bench [--devices 500] [--days 30] [--runs 10] [--out FILE]

Starts a private `influxd` (the tests' process class), writes `--days` of history for
`--devices` devices as line protocol (telemetry at each kind's interval, uses of five
services by a pool of pseudonymous users), registers the pilot, then times through the HTTP
API (in process, auth included): every KPI for those days at day and month grain,
and a 24-hour series of one metric at 1-minute buckets. Targets (issue 4): end-user pull
KPIs < 300 ms p95, other KPIs < 2 s p95, the 24-hour series < 100 ms p95.
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
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from api.app import create_app
from api.catalog import Catalog, Device, Pilot, Registry, Role, Service
from api.kpis.catalog import KPIS, Family
from api.options import ApiOptions
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
    async with httpx.AsyncClient(base_url=influx.http, timeout=120) as client:
        await client.post("/query", data={"q": f'CREATE DATABASE "{database}"'})
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
        shards = [d for d in data.glob("bench/autogen/*") if d.is_dir()]
        files = sorted(str(f) for f in data.glob("bench/autogen/*/*.tsm"))
        if shards and all(any(s.glob("*.tsm")) for s in shards) and files == last:
            break
        last = files
        time.sleep(2.0)
    return time.monotonic() - began


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, round(0.95 * len(ordered) + 0.5) - 1))]


async def timed(client: httpx.AsyncClient, path: str, params: dict[str, str], key: str,
                runs: int) -> list[float]:
    headers = {"Authorization": f"Bearer {key}"}
    (await client.get(path, params=params, headers=headers)).raise_for_status()  # warm-up
    out: list[float] = []
    for _ in range(runs):
        began = time.perf_counter()
        response = await client.get(path, params=params, headers=headers)
        out.append(time.perf_counter() - began)
        response.raise_for_status()
    return out


async def measure(store_url: str, catalog_url: str, key: str, month: tuple[datetime, datetime],
                  runs: int) -> dict[str, dict[str, float]]:
    app = create_app(ApiOptions(store_url=store_url, catalog_url=catalog_url))
    results: dict[str, dict[str, float]] = {}
    period = {"pilot": PILOT, "start": month[0].isoformat(), "end": month[1].isoformat()}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        for kpi in KPIS:
            for grain in ("day", "month"):
                samples = await timed(client, f"/api/v1/kpis/{kpi.id}",
                                      {**period, "grain": grain}, key, runs)
                target = 0.3 if kpi.family is Family.PULL else 2.0
                results[f"{kpi.id}/{grain}"] = _stats(samples, target)
                _print(f"{kpi.id}/{grain}", results[f"{kpi.id}/{grain}"])
        day_end = month[1]
        series = {"pilot": PILOT, "kind": "air_quality", "metric": "no2", "device": "air0",
                  "start": (day_end - timedelta(days=1)).isoformat(),
                  "end": day_end.isoformat(), "every": "60"}
        samples = await timed(client, "/api/v1/readings", series, key, max(runs, 20))
        results["readings_24h_1min"] = _stats(samples, 0.1)
        _print("readings_24h_1min", results["readings_24h_1min"])
    return results


def _stats(samples: list[float], target: float) -> dict[str, float]:
    return {"p50_ms": 1000 * statistics.median(samples), "p95_ms": 1000 * p95(samples),
            "target_ms": 1000 * target, "runs": len(samples)}


def _print(name: str, r: dict[str, float]) -> None:
    ok = "ok " if r["p95_ms"] < r["target_ms"] else "OVER"
    sys.stderr.write(f"{ok} {name:<36} p50 {r['p50_ms']:8.1f} ms  p95 {r['p95_ms']:8.1f} ms  "
                     f"(target {r['target_ms']:.0f} ms)\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kpi-bench-") as tmp:
        influx = InfluxDB(Path(tmp) / "influxdb")
        # A month of history is on disk in TSM files, not in the write cache: let InfluxDB
        # snapshot the cache soon after the load (its default waits 10 minutes).
        conf = influx.workdir / "influxdb.conf"
        conf.write_text(conf.read_text().replace(
            "[data]\n", '[data]\n  cache-snapshot-write-cold-duration = "2s"\n'))
        influx.start()
        try:
            return _run(args, influx, Path(tmp))
        finally:
            influx.stop()


def _run(args: argparse.Namespace, influx: InfluxDB, tmp: Path) -> int:
    # The history: the last `days` local days before today; the KPIs are asked for all of it.
    history_end = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    history_start = (history_end - timedelta(days=args.days)).replace(tzinfo=None).replace(
        tzinfo=TZ)
    devices = layout(args.devices)
    began = time.perf_counter()
    points = asyncio.run(load(influx, "bench", devices, int(history_start.timestamp()) * S,
                              args.days))
    load_s = time.perf_counter() - began
    sys.stderr.write(f"wrote {points:,} points for {len(devices)} devices over {args.days} "
                     f"days in {load_s:.1f} s\n")
    settle_s = wait_for_tsm(influx.workdir / "data")
    sys.stderr.write(f"cache snapshotted to TSM after {settle_s:.1f} s\n")
    catalog_url = f"sqlite:///{tmp / 'catalog.db'}"
    catalog = Catalog(catalog_url)
    catalog.load(Registry(pilots=(Pilot(
        id=PILOT, timezone=TZ.key, population=120_000, lighting_baseline_kwh_per_day=400.0,
        devices=tuple(devices),
        services=tuple(Service(id=s, capacity=c or None) for s, c in SERVICES.items())),)))
    _, key = catalog.create_key("bench", Role.OPERATOR)  # readings need an operator
    catalog.close()
    month = (history_start, history_end)
    results = asyncio.run(measure(influx.url("bench"), catalog_url, key, month, args.runs))
    summary = {"points": points, "devices": len(devices), "days": args.days,
               "load_s": load_s, "period": [month[0].isoformat(), month[1].isoformat()],
               "results": results}
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    over = [name for name, r in results.items() if r["p95_ms"] >= r["target_ms"]]
    sys.stdout.write(json.dumps({"over_target": over, "points": points}) + "\n")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
