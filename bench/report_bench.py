"""`python -m bench.report_bench`: a whole year's evaluation report of one pilot (a benchmark,
not a test).

    python -m bench.report_bench [--devices 100] [--days 365] [--runs 3] [--out FILE]

A private `influxd` (the tests' process class) holds the simulated pilot of `bench.kpi_bench`
(`--devices` devices, `--days` days of telemetry and service use before today, rolled up as
the rollup worker does), registered with targets and a registry baseline. Then the report for
the whole history, through the HTTP API in process (auth, the KPI service, rendering):
`GET /api/v1/reports/evaluation` per format (html, xlsx, pdf) with `--days` up to today, each
format through a fresh API so that its first call is cold (no KPI result cached), then
`--runs` more of each.
Target (issue 12): under 10 s for a year, the PDF included. Exit 1 when over it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx

from api.app import create_app
from api.catalog import Baseline, Catalog, Direction, Registry, Target
from api.options import ApiOptions
from bench.kpi_bench import PILOT, TZ, layout, load_and_roll, register, wait_for_tsm
from tests.servers import InfluxDB

TARGET_S = 10.0
FORMATS = ("html", "xlsx", "pdf")


def _targets(catalog_url: str) -> None:
    """Targets and a registry baseline, so that every section of the report has content."""
    catalog = Catalog(catalog_url)
    entry = catalog.pilot(PILOT)
    assert entry is not None
    catalog.load(Registry(pilots=(entry.model_copy(update={
        "targets": {"availability": Target(value=95.0, direction=Direction.AT_LEAST),
                    "usage_events": Target(value=10_000.0, direction=Direction.AT_LEAST),
                    "no2_mean": Target(value=40.0, direction=Direction.AT_MOST)},
        "baselines": {"pm25_mean": Baseline(value=18.5, source="official station",
                                            date=date(2025, 12, 31))}}),)))
    catalog.close()


async def _steps(store_url: str, catalog_url: str, start: datetime, end: datetime
                 ) -> list[tuple[str, float]]:
    """The report's content built once more, cold (no KPI result cache), through the
    rollups as the API reads: each step's seconds, slowest first (the steps are `build`'s
    progress: period, baseline, weekly KPI by KPI)."""
    from api.app import zones
    from api.fleet import Fleet
    from api.kpis.rollups.reader import RollupReader
    from api.reports.evaluation import build
    from ingest.stores import open_reader
    from ingest.stores.naming import rollup_url

    catalog = Catalog(catalog_url)
    entry = catalog.pilot(PILOT)
    assert entry is not None
    marks: list[tuple[str, float]] = [("start", time.perf_counter())]
    async with open_reader(store_url) as raw, open_reader(rollup_url(store_url)) as rolled:
        reader = RollupReader(raw, rolled, zones(catalog))  # as the API's, without its cache
        await build(reader, Fleet(reader, catalog), entry, int(start.timestamp()) * 10**9,
                    int(end.timestamp()) * 10**9, now_ns=time.time_ns(),
                    progress=lambda what: marks.append((what, time.perf_counter())))
    marks.append(("the rest of the content", time.perf_counter()))
    catalog.close()
    # A mark is made when its step has finished: the time before it is the step's.
    return sorted(((b, t2 - t1) for (_, t1), (b, t2) in pairwise(marks)), key=lambda x: -x[1])


async def _report(store_url: str, catalog_url: str, key: str, start: datetime, end: datetime,
                  runs: int) -> dict[str, Any]:
    """Each format through an API of its own, so that each format's first call is cold (no
    KPI result cached: what a city's first click on a year's report waits for)."""
    params = {"pilot": PILOT, "start": start.isoformat(), "end": end.isoformat()}
    out: dict[str, Any] = {}
    for fmt in FORMATS:
        app = create_app(ApiOptions(store_url=store_url, catalog_url=catalog_url))
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://bench",
                timeout=600) as client:
            samples = []
            for _ in range(1 + runs):
                began = time.perf_counter()
                answer = await client.get("/api/v1/reports/evaluation",
                                          params={**params, "format": fmt},
                                          headers={"Authorization": f"Bearer {key}"})
                samples.append(time.perf_counter() - began)
                if answer.status_code != 200:
                    raise SystemExit(f"{fmt}: HTTP {answer.status_code}: {answer.text[:300]}")
        out[fmt] = {"first_s": samples[0], "median_s": statistics.median(samples[1:])
                    if runs else None, "max_s": max(samples), "bytes": len(answer.content)}
        sys.stderr.write(f"{fmt:<5} first (cold) {samples[0]:6.2f} s"
                         + (f"  then median {out[fmt]['median_s']:6.2f} s" if runs else "")
                         + f"  ({len(answer.content):,} bytes; target {TARGET_S:g} s)\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.report_bench",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100, help="simulated devices (100)")
    parser.add_argument("--days", type=int, default=365, help="days of history (365)")
    parser.add_argument("--runs", type=int, default=3, help="calls after the first (3)")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    if args.devices < 1 or args.days < 1 or args.runs < 0:
        parser.error("--devices and --days must be at least 1, --runs at least 0")
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        # History is on disk in TSM files, not in the write cache: let InfluxDB snapshot
        # the cache soon after the load (its default waits 10 minutes).
        influx = InfluxDB(Path(tmp) / "influxdb",
                          data={"cache-snapshot-write-cold-duration": '"2s"'})
        influx.start()
        try:
            end = datetime.now(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
            start = (end - timedelta(days=args.days)).replace(tzinfo=None).replace(tzinfo=TZ)
            devices = layout(args.devices)
            catalog_url = f"sqlite:///{Path(tmp) / 'catalog.db'}"
            key = register(catalog_url, devices)
            _targets(catalog_url)
            store = asyncio.run(load_and_roll(influx, "year", devices, start, args.days,
                                              catalog_url))
            wait_for_tsm(influx.workdir / "data")
            results = asyncio.run(_report(influx.url("year"), catalog_url, key, start, end,
                                          args.runs))
            steps = asyncio.run(_steps(influx.url("year"), catalog_url, start, end))
            sys.stderr.write("slowest steps of the content, cold: " + ", ".join(
                f"{what} {s:.2f} s" for what, s in steps[:8]) + "\n")
        finally:
            influx.stop()
    worst = max(r["max_s"] for r in results.values())
    summary = {"devices": len(devices), "days": args.days, "store": store,
               "results": results, "steps": steps, "worst_s": worst, "target_s": TARGET_S,
               "over_target": worst >= TARGET_S}
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2))
    sys.stdout.write(json.dumps({"worst_s": round(worst, 2), "target_s": TARGET_S,
                                 "over_target": worst >= TARGET_S}) + "\n")
    return 1 if worst >= TARGET_S else 0


if __name__ == "__main__":
    raise SystemExit(main())
