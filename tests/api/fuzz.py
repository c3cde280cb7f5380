"""The API under schemathesis: a real uvicorn over a real InfluxDB holding the KPI contract
data, fuzzed by the schemathesis CLI with every phase (examples, coverage, fuzzing, stateful
links) and every check, as an admin so that every route is reached.

`python -m tests.api.fuzz --examples 300` (`make fuzz`) starts its own InfluxDB in a temp
dir and runs long; the suite runs the same thing short (`test_schemathesis.py`). Exit code:
schemathesis's (0 when nothing failed).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from api.app import ApiOptions, create_app
from api.catalog import Catalog, Registry, Role
from ingest.stores import open_store
from tests.api.conftest import P2, serving
from tests.contract.test_kpis import PILOT, seed
from tests.servers import InfluxDB, free_port

PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = Path(__file__).with_name("schemathesis.toml")
# The role matrix is `test_access.py`: schemathesis's auth checks send no key and wrong keys,
# which must answer 401, not spend the failed-authentication window into 429s.
LIMITS = {"auth_failure_limit": "1000000/minute", "open_rate_limit": "1000000/minute"}


async def _seed(url: str) -> None:
    async with open_store(url) as store:
        assert await store.write(seed()) == []


@contextmanager
def api_under_test(influxdb: InfluxDB, workdir: Path) -> Iterator[tuple[str, str]]:
    """(base URL, admin key) of a uvicorn serving the API over `influxdb`."""
    url = influxdb.url(f"schemathesis_{int(time.time() * 1000)}")
    asyncio.run(_seed(url))
    catalog_url = f"sqlite:///{workdir / 'catalog.db'}"
    catalog = Catalog(catalog_url, key_cost=2**8)
    catalog.load(Registry(pilots=(PILOT, P2)))
    _, key = catalog.create_key("schemathesis", Role.ADMIN)
    catalog.close()
    app = create_app(ApiOptions(store_url=url, catalog_url=catalog_url, **LIMITS))
    with serving(app, free_port()) as base:
        yield base, key


def schemathesis(base: str, key: str, examples: int, report_dir: Path, *extra: str,
                 capture: bool = True) -> subprocess.CompletedProcess[str]:
    """One schemathesis CLI run against the API at `base`; its output captured unless told
    otherwise."""
    argv = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run",
            f"{base}/openapi.json",
            "--phases", PHASES, "--checks", "all", "--max-examples", str(examples),
            "--header", f"Authorization: Bearer {key}", "--seed", "1",
            "--workers", "1", "--suppress-health-check", "all",
            "--report", "ndjson", "--report-dir", str(report_dir), *extra]
    report_dir.mkdir(parents=True, exist_ok=True)  # also its cwd: its cache goes there
    return subprocess.run(argv, capture_output=capture, text=True, check=False, cwd=report_dir)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=300,
                        help="test cases per operation and phase (default: 300)")
    parser.add_argument("--report-dir", type=Path, default=Path("citypilot-data/fuzz"),
                        help="where schemathesis writes its NDJSON report (default: "
                        "citypilot-data/fuzz)")
    parser.add_argument("extra", nargs="*", help="more schemathesis options, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="citypilot-fuzz-") as tmp:
        work = Path(tmp)
        influxdb = InfluxDB(work / "influxdb")
        influxdb.start()
        try:
            with api_under_test(influxdb, work) as (base, key):
                done = schemathesis(base, key, args.examples, args.report_dir.resolve(),
                                    *args.extra, capture=False)
        finally:
            influxdb.stop()
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
