"""`python -m bench.open_bench`: the open interfaces over a month of a large pilot (a
benchmark, not a test).

    python -m bench.open_bench [--devices 1000] [--days 30] [--runs 200] [--out FILE]

A private `influxd` (the tests' process class) holds `bench.kpi_bench`'s simulated pilot
(`--devices` devices, `--days` days of telemetry and service use before today, rolled up as
the rollup worker does), every device registered with coordinates. Through the HTTP API in
process (auth included, a viewer key):

- SensorThings: `GET /sta/v1.1/Datastreams(id)/Observations?$top=1000` for `--runs` random
  Datastreams (target, issue 13: p95 under 100 ms over 30 days of a 500-device pilot), beside
  its ceiling measured in the same run: the same InfluxQL statement sent straight to
  InfluxDB; and the first (cold) model build, `/sta/v1.1/Things`.
- The inventory: `GET /ogc/collections/devices/items?limit=1000`, cold (availability and
  completeness of every device computed) and warm (target: under 200 ms for 1,000 devices).
Exit 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.catalog import Catalog, Registry, Role
from api.options import ApiOptions
from bench.kpi_bench import PILOT, TZ, layout, load_and_roll, p95, register, wait_for_tsm
from tests.servers import InfluxDB

STA_P95_MS = 100.0
INVENTORY_MS = 200.0


def _place(catalog_url: str) -> str:
    """Coordinates for every device (a grid of 100 m steps); a viewer key."""
    catalog = Catalog(catalog_url)
    entry = catalog.pilot(PILOT)
    assert entry is not None
    devices = tuple(d.model_copy(update={"lat": 38.70 + (i % 40) * 0.001,
                                         "lon": -9.15 + (i // 40) * 0.001})
                    for i, d in enumerate(entry.devices))
    catalog.load(Registry(pilots=(entry.model_copy(update={"devices": devices}),)))
    _, key = catalog.create_key("open-bench", Role.VIEWER)
    catalog.close()
    return key


async def _get(client: httpx.AsyncClient, path: str, key: str, **params: Any
               ) -> tuple[float, httpx.Response]:
    began = time.perf_counter()
    answer = await client.get(path, params=params or None,
                              headers={"Authorization": f"Bearer {key}"})
    elapsed = time.perf_counter() - began
    answer.raise_for_status()
    return elapsed, answer


def _stats(samples: list[float]) -> dict[str, float]:
    return {"p50_ms": 1000 * statistics.median(samples), "p95_ms": 1000 * p95(samples),
            "runs": len(samples)}


async def _measure(influx: InfluxDB, catalog_url: str, key: str, runs: int
                   ) -> dict[str, Any]:
    app = create_app(ApiOptions(store_url=influx.url("long"), catalog_url=catalog_url,
                                open_rate_limit="1000000/minute"))  # one client, many calls
    rng = random.Random(7)
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=300
            ) as client, httpx.AsyncClient(base_url=influx.http, timeout=60) as raw:
        cold, things = await _get(client, "/sta/v1.1/Things", key, **{"$count": "true"})
        out["sta_model_cold_ms"] = 1000 * cold
        out["things"] = things.json()["@iot.count"]
        _, listed = await _get(client, "/sta/v1.1/Datastreams", key, **{
            "$top": 10000, "$select": "id,name,properties", "$count": "true"})
        streams = [d for d in listed.json()["value"]]
        out["datastreams"] = listed.json()["@iot.count"]
        sys.stderr.write(f"{out['things']} Things, {out['datastreams']} Datastreams; model "
                         f"built cold in {out['sta_model_cold_ms']:.0f} ms\n")
        sta, ceiling, sizes = [], [], []
        for _ in range(runs):
            ds = rng.choice([d for d in streams if "kind" in d["properties"]])
            took, answer = await _get(client, f"/sta/v1.1/Datastreams({ds['@iot.id']})"
                                      "/Observations", key, **{"$top": 1000})
            sta.append(took)
            sizes.append(len(answer.json()["value"]))
            device = ds["name"].split(" of ")[1].split(".")
            q = (f'SELECT "{ds["properties"]["metric"]}","pilot","gateway","device" FROM '
                 f'"{ds["properties"]["kind"]}" WHERE "pilot" = \'{device[0]}\' AND '
                 f'"gateway" = \'{device[1]}\' AND "device" = \'{device[2]}\' '
                 "ORDER BY time DESC LIMIT 1001 OFFSET 0")
            began = time.perf_counter()
            (await raw.get("/query", params={"db": "long", "q": q})).raise_for_status()
            ceiling.append(time.perf_counter() - began)
        out["sta_observations_top1000"] = _stats(sta) | {
            "target_p95_ms": STA_P95_MS, "mean_returned": statistics.mean(sizes)}
        out["ceiling_influxql"] = _stats(ceiling)
        out["ratio_p95"] = out["sta_observations_top1000"]["p95_ms"] / \
            out["ceiling_influxql"]["p95_ms"]
        took, _ = await _get(client, "/sta/v1.1/Observations", key, **{"$top": 1000})
        out["sta_all_observations_top1000_ms"] = 1000 * took
        cold_inv, inv = await _get(client, "/ogc/collections/devices/items", key, limit=1000)
        warm = [(await _get(client, "/ogc/collections/devices/items", key, limit=1000))[0]
                for _ in range(max(5, runs // 20))]
        out["inventory"] = {"devices": inv.json()["numberMatched"],
                            "cold_ms": 1000 * cold_inv, **_stats(warm),
                            "target_ms": INVENTORY_MS}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results/open_bench.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="open-bench-") as tmp_dir:
        tmp = Path(tmp_dir)
        influx = InfluxDB(tmp / "influxdb", data={"cache-snapshot-write-cold-duration": '"2s"'})
        influx.start()
        try:
            result = _run(args, influx, tmp)
        finally:
            influx.stop()
    return _report(args, result)


def _run(args: argparse.Namespace, influx: InfluxDB, tmp: Path) -> dict[str, Any]:
    devices = layout(args.devices)
    catalog_url = f"sqlite:///{tmp / 'catalog.db'}"
    register(catalog_url, devices)
    key = _place(catalog_url)
    end = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=args.days)
    stored = asyncio.run(load_and_roll(influx, "long", devices, start, args.days,
                                       catalog_url))
    points = stored["points"]
    sys.stderr.write(f"TSM after {wait_for_tsm(influx.workdir / 'data'):.0f} s\n")
    result = asyncio.run(_measure(influx, catalog_url, key, args.runs))
    return result | {"devices": args.devices, "days": args.days, "points": points}


def _report(args: argparse.Namespace, result: dict[str, Any]) -> int:
    sta, inv = result["sta_observations_top1000"], result["inventory"]
    print(f"SensorThings Observations $top=1000: p50 {sta['p50_ms']:.1f} ms, p95 "
          f"{sta['p95_ms']:.1f} ms (target < {STA_P95_MS:.0f}); InfluxQL ceiling p95 "
          f"{result['ceiling_influxql']['p95_ms']:.1f} ms, ratio {result['ratio_p95']:.2f}x")
    print(f"SensorThings model cold {result['sta_model_cold_ms']:.0f} ms; all Observations "
          f"$top=1000 {result['sta_all_observations_top1000_ms']:.0f} ms")
    print(f"inventory of {inv['devices']} devices: cold {inv['cold_ms']:.0f} ms, warm p50 "
          f"{inv['p50_ms']:.1f} ms, p95 {inv['p95_ms']:.1f} ms (target < {INVENTORY_MS:.0f})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    return int(sta["p95_ms"] >= STA_P95_MS or inv["p95_ms"] >= INVENTORY_MS)


if __name__ == "__main__":
    raise SystemExit(main())
