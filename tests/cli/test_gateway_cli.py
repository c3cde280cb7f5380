"""`citypilot gateway` as a process: a power cut (SIGKILL) loses nothing it had accepted, and
with --duration it exits 0 once everything is delivered."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson

from ingest.spool import Spool
from tests.collectors import CHILDREN
from tests.mqttclient import Recorder
from tests.servers import Mosquitto
from tests.support import wait_until


def agent(tmp: Path, url: str, prefix: str, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPILOT_")}
    log = open(tmp / "gateway.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "citypilot", "gateway", "--pilot", prefix,
                             "--gateway", "gw-1", "--upstream", url, "--spool-dir",
                             str(tmp / "spool"), *args], cwd=tmp, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    log.close()
    CHILDREN.append(proc)
    return proc


def readings(messages: list[tuple[str, bytes]]) -> set[tuple[str, int]]:
    """(topic, ts) of every reading in these messages (arrays unpacked)."""
    out = set()
    for topic, payload in messages:
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            continue
        for d in doc if isinstance(doc, list) else [doc]:
            if isinstance(d, dict) and isinstance(d.get("ts"), int) and "state" not in d:
                out.add((topic, d["ts"]))
    return out


def test_power_cut_loses_nothing_accepted(make_mosquitto: Callable[..., Mosquitto],
                                          prefix: str, tmp_path: Path) -> None:
    broker = make_mosquitto()
    rec = Recorder(broker.url, f"citypilot/v1/{prefix}/#", client_id=f"rec-{prefix}",
                   clean=False)
    broker.stop()  # the uplink is down: the agent starts anyway and accepts into its spool
    proc = agent(tmp_path, broker.url, prefix, "--simulate", "6", "--rate", "200",
                 "--duration", "60s", "--seed", "7")

    def accepted() -> int:  # read from the spool's file: the running agent holds its lock
        db = tmp_path / "spool" / "gateway.db"
        assert db.exists()
        try:
            with sqlite3.connect(db) as conn:
                row = conn.execute("SELECT value FROM meta WHERE key = 'items'").fetchone()
        except sqlite3.OperationalError as exc:  # the agent is still creating it
            raise AssertionError(str(exc)) from exc
        n = int(row[0])
        assert n >= 300, n
        return n

    wait_until(accepted, timeout=30)
    proc.send_signal(signal.SIGKILL)  # the power cut
    proc.wait(10)
    with Spool(tmp_path / "spool", name="gateway") as spool:  # the lock died with the process
        kept = [r.body.partition(b"\n") for r in spool.peek(1_000_000)]
    expected = readings([(topic.decode(), payload) for topic, _, payload in kept])
    assert len(kept) >= 300 and len(expected) >= 200  # status messages carry no reading

    broker.start()
    proc = agent(tmp_path, broker.url, prefix, "--duration", "0.1", "--summary-json",
                 str(tmp_path / "summary.json"))
    assert proc.wait(60) == 0, (tmp_path / "gateway.log").read_text()[-2000:]
    wait_until(lambda: expected <= readings(list(rec.messages)), timeout=30)
    rec.close()
    summary = orjson.loads((tmp_path / "summary.json").read_bytes())
    assert summary["delivered"] == len(kept) and summary["spool_depth"] == 0
