"""`citypilot up --demo` on a fresh directory: readings flow into SQLite within seconds, the
summary says so (plain lines: stderr is a file here), the backfill is stored and rolled up, the
API answers with the printed key, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.servers import free_port
from tests.support import stored_count, wait_until


def test_demo_runs_out_of_the_box(tmp_path: Path) -> None:
    port, api = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPILOT_")}
    env["CITYPILOT_METRICS_PORT"] = "0"
    err = tmp_path / "stderr.log"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "citypilot", "up", "--demo", "--port",
                                 str(port), "--api-port", str(api), "--backfill", "1h"],
                                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    db = tmp_path / "citypilot-data" / "citypilot.db"
    try:
        def stored() -> int:
            assert db.exists(), "no database yet"
            n = asyncio.run(count_events(f"sqlite:///{db}"))
            assert n >= 20, f"{n} events stored"
            return n

        wait_until(stored, timeout=60)
        wait_until(lambda: re.search(r"in \d+ msgs .* stored \d+ points: .*event",
                                     err.read_text()), timeout=10)
        text = err.read_text()
        key = re.search(r"API key  (\S+)", text)
        assert key, text[:2000]
        me = httpx.get(f"http://127.0.0.1:{api}/api/v1/me",
                       headers={"Authorization": f"Bearer {key.group(1)}"}, timeout=10)
        assert me.status_code == 200 and me.json()["role"] == "admin"
        # The simulated fleet is registered: KPIs expect each device's own interval.
        devices = httpx.get(f"http://127.0.0.1:{api}/api/v1/devices", params={
            "pilot": "pilot-01"}, headers={"Authorization": f"Bearer {key.group(1)}"},
            timeout=10).json()
        assert len(devices) == 14 and all(d["registered"] for d in devices)
        assert {d["service"] for d in devices} >= {"kiosk", "parking", "city_app"}

        def rolled_up() -> int:  # the in-process worker summarised the backfilled hour
            n = asyncio.run(stored_count(f"sqlite:///{rollups}", "event", "value__count"))
            assert n > 0, "no event rollups yet"
            return n

        rollups = tmp_path / "citypilot-data" / "citypilot_rollups.db"
        wait_until(rolled_up, timeout=60)
        # The backfill went straight to the store; a rollup pass begun after it covers it.
        wait_until(lambda: "rollups cover the history" in err.read_text(), timeout=60)
        assert "history stored: 1 h in " in err.read_text()
        wait_until(lambda: re.search(r"\| history 1 h stored \(\d+ s\) \| rollups up to date",
                                     err.read_text()), timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(60)
    assert code == 0, err.read_text()[-3000:]
    assert "collector stopped" in err.read_text()


async def count_events(url: str) -> int:
    return await stored_count(url, "event", "value")
