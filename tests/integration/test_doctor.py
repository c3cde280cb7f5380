"""`citypilot doctor` against real Mosquitto and InfluxDB processes: a clean setup exits 0; a
stock-limit broker gives the queue-limit warning; an expired CA certificate an error; an
InfluxDB near a low `max-series-per-database` and a gateway whose clock runs ahead give
warnings. The command runs as a user runs it, in its own interpreter."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ingest.stores import open_store
from tests.contract.test_kpis import reading
from tests.servers import InfluxDB, Mosquitto

SMALL_SPOOL = str(64 << 20)  # so the spool's disk check does not depend on this disk's size


def doctor(tmp: Path, *args: str, **env: str) -> tuple[int, list[dict[str, str]]]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CITYPILOT_")}
    base.update(CITYPILOT_SPOOL_DIR=str(tmp / "spool"), CITYPILOT_SPOOL_MAX_BYTES=SMALL_SPOOL,
                CITYPILOT_CATALOG_URL=f"sqlite:///{tmp / 'catalog.db'}",
                CITYPILOT_MOSQUITTO_PASSWORD_FILE=str(tmp / "passwd"), **env)
    done = subprocess.run([sys.executable, "-m", "citypilot", "doctor", "--json", *args],
                          env=base, cwd=tmp, capture_output=True, timeout=120, check=False)
    assert done.returncode in (0, 1, 2), done.stderr.decode()
    return done.returncode, json.loads(done.stdout)


def levels(findings: list[dict[str, str]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in findings:
        out.setdefault(f["id"], set()).add(f["level"])
    return out


def test_a_clean_setup_exits_0(make_mosquitto: Callable[..., Mosquitto], influx_url: str,
                               tmp_path: Path) -> None:
    broker = make_mosquitto()  # persistence and max_queued_messages 0, as deploy/ sets them
    code, findings = doctor(tmp_path, "--mosquitto-conf", str(broker.workdir / "mosquitto.conf"),
                            CITYPILOT_MQTT_URL=broker.url, CITYPILOT_STORE_URL=influx_url)
    assert code == 0, findings
    seen = levels(findings)
    for check in ("broker.connect", "broker.drops", "broker.queue", "broker.persistence",
                  "store.version", "store.clock", "spool.disk", "clock.gateway",
                  "secrets.shipped"):
        assert seen.get(check) == {"ok"}, (check, findings)
    assert seen["rollups.lag"] == {"info"}  # no rollup worker has run
    queue = next(f for f in findings if f["id"] == "broker.queue")
    assert "kept all 2000 probe messages" in queue["message"]
    assert all(set(f) == {"id", "level", "message", "fix"} for f in findings)


def test_a_stock_limit_broker_gives_the_queue_warning(
        make_mosquitto: Callable[..., Mosquitto], sqlite_url: str, tmp_path: Path) -> None:
    broker = make_mosquitto(max_queued_messages=1000)  # Mosquitto's stock limit
    code, findings = doctor(tmp_path, CITYPILOT_MQTT_URL=broker.url,
                            CITYPILOT_STORE_URL=sqlite_url)
    assert code == 1, findings
    [queue] = [f for f in findings if f["id"] == "broker.queue"]
    assert queue["level"] == "warning"
    assert "kept 1000 of 2000 messages" in queue["message"]
    assert "max_queued_messages 0" in queue["fix"]
    # Persistence cannot be seen from outside the broker: said, not guessed.
    [persistence] = [f for f in findings if f["id"] == "broker.persistence"]
    assert persistence["level"] == "info" and "cannot be seen" in persistence["message"]


def _expired_ca(directory: Path) -> Path:
    """A CA certificate valid in January 2020 only (`openssl ca` takes explicit dates)."""
    directory.mkdir()
    (directory / "index.txt").write_text("")
    (directory / "serial").write_text("01\n")
    (directory / "ca.cnf").write_text(
        "[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\n"
        "default_md = sha256\npolicy = p\nunique_subject = no\n[p]\ncommonName = supplied\n"
        "[v3]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign\n")
    for argv in (["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                  "-nodes", "-keyout", "ca.key", "-out", "ca.csr", "-subj", "/CN=expired CA"],
                 ["ca", "-batch", "-config", "ca.cnf", "-selfsign", "-keyfile", "ca.key",
                  "-in", "ca.csr", "-out", "ca.crt", "-startdate", "20200101000000Z",
                  "-enddate", "20200201000000Z", "-extensions", "v3", "-notext"]):
        subprocess.run(["openssl", *argv], cwd=directory, check=True, capture_output=True)
    return directory / "ca.crt"


def test_an_expired_ca_certificate_is_an_error(mosquitto: Mosquitto, sqlite_url: str,
                                               tmp_path: Path) -> None:
    ca = _expired_ca(tmp_path / "ca")
    code, findings = doctor(tmp_path, "--probe-messages", "0", CITYPILOT_MQTT_URL=mosquitto.url,
                            CITYPILOT_STORE_URL=sqlite_url, CITYPILOT_MQTT_CA_FILE=str(ca))
    assert code == 2, findings
    [tls] = [f for f in findings if f["id"] == "tls.expiry"]
    assert tls["level"] == "error"
    assert "'expired CA' expired" in tls["message"] and str(ca) in tls["message"]


def test_a_shipped_password_is_reported_not_refused(mosquitto: Mosquitto, tmp_path: Path,
                                                    sqlite_url: str) -> None:
    url = mosquitto.url.replace("mqtt://", "mqtt://citypilot-collector:change-me-collector@")
    code, findings = doctor(tmp_path, "--probe-messages", "0", CITYPILOT_MQTT_URL=url,
                            CITYPILOT_STORE_URL=sqlite_url)
    assert code == 2
    [secret] = [f for f in findings if f["id"] == "secrets.shipped"]
    assert secret["level"] == "error" and "CITYPILOT_MQTT_URL" in secret["message"]


def test_bad_urls_are_findings_not_tracebacks(tmp_path: Path) -> None:
    code, findings = doctor(tmp_path, CITYPILOT_MQTT_URL="mqtt://broker:port",
                            CITYPILOT_STORE_URL="influxdb://influx:8086/")
    assert code == 2
    assert levels(findings)["broker.connect"] == {"error"}
    assert levels(findings)["store.connect"] == {"error"}


@pytest.fixture
def low_limit_influxdb(tmp_path: Path) -> Iterator[InfluxDB]:
    """An InfluxDB whose `max-series-per-database` is 10."""
    server = InfluxDB(tmp_path / "influx-low", data={"max-series-per-database": "10"})
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_near_the_series_limit_and_a_gateway_ahead_warn(
        low_limit_influxdb: InfluxDB, sqlite_url: str, tmp_path: Path) -> None:
    url = low_limit_influxdb.url("city")
    now = time.time_ns()
    points = [reading("air_quality", f"aq{i}", now - 60 * 10**9, 0.4, pm25=5.0)
              for i in range(8)]  # 8 series from gateway g1, on time
    points.append(reading("noise", "n1", now - 30 * 10**9, -42.0, gateway="g2",
                          noise_laeq=50.0))  # a ninth, stamped 42 s in the collector's future

    async def seed() -> None:
        async with open_store(url) as store:
            assert await store.write(points) == []

    asyncio.run(seed())
    code, findings = doctor(tmp_path, "--probe-messages", "0", CITYPILOT_STORE_URL=url,
                            CITYPILOT_MQTT_URL="mqtt://127.0.0.1:1")
    series = {f["message"].split("'")[1]: f for f in findings if f["id"] == "store.series"}
    assert series["city"]["level"] == "warning", series
    assert "about 9 series, 90% of max-series-per-database = 10" in series["city"]["message"]
    assert "influxdb.conf" in series["city"]["fix"]
    # The writes marked hours dirty for the rollups, in a database of their own.
    assert series["city_rollups"]["level"] == "ok"
    [clock] = [f for f in findings if f["id"] == "clock.gateway"]
    assert clock["level"] == "warning" and "p1/g2" in clock["message"]
    assert "42.0 s ahead" in clock["message"]
    assert levels(findings)["broker.connect"] == {"error"}  # nothing listens on port 1
    assert code == 2
