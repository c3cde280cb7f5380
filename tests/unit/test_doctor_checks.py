"""The checks of `citypilot doctor`, each a pure function over facts: table-driven."""

from __future__ import annotations

import math

import pytest

from api.doctor import checks
from api.doctor.checks import (
    Certificate,
    Finding,
    GatewayDelay,
    Headroom,
    Level,
    MosquittoConf,
    exit_code,
)
from ingest.mqtt.probe import BrokerFacts, QueueProbe

B = "mqtt://broker:1883"
DAY = 86400.0


def one(findings: list[Finding], id_: str) -> Finding:
    [found] = [f for f in findings if f.id == id_]
    return found


@pytest.mark.parametrize(("levels", "code"), [
    ([], 0), ([Level.OK, Level.INFO], 0), ([Level.OK, Level.WARNING], 1),
    ([Level.WARNING, Level.ERROR, Level.OK], 2)])
def test_exit_code(levels: list[Level], code: int) -> None:
    assert exit_code(Finding(id="x", level=lv, message="m") for lv in levels) == code


def test_a_finding_is_one_line_with_its_fix() -> None:
    line = Finding(id="spool.disk", level=Level.WARNING, message="full", fix="free it").line()
    assert line == "warning spool.disk: full — fix: free it"
    assert "\n" not in line


@pytest.mark.parametrize(("text", "conf"), [
    ("", MosquittoConf()),
    ("persistence true\nmax_queued_messages 0\nmax_queued_bytes 512\n",
     MosquittoConf(True, 0, 512)),
    ("max_queued_messages 10 # a comment\n# max_queued_messages 0\npersistence false\n",
     MosquittoConf(False, 10, None)),
    ("max_queued_messages 5\nmax_queued_messages 0\n", MosquittoConf(None, 0, None)),
])
def test_parse_mosquitto_conf(text: str, conf: MosquittoConf) -> None:
    assert checks.parse_mosquitto_conf(text) == conf


def _broker(probe: QueueProbe | None = None, refused: str | None = None,
            dropped: int | None = 0, conf: MosquittoConf | None = None) -> list[Finding]:
    facts = BrokerFacts(B, version="mosquitto version 2.0.11", uptime="5 seconds",
                        dropped=dropped, probe=probe, refused=refused)
    return checks.broker(facts, conf, "citypilot-collector")


@pytest.mark.parametrize(("probe", "conf", "level", "words"), [
    (QueueProbe(2000, 1000, True), None, Level.WARNING, "kept 1000 of 2000"),
    (QueueProbe(2000, 2000, True), None, Level.OK, "above 2000 cannot be seen"),
    (QueueProbe(2000, 2000, True), MosquittoConf(True, 0, None), Level.OK,
     "sets no count limit"),
    (None, MosquittoConf(True, 0, None), Level.OK, "no count limit"),
    (None, MosquittoConf(True, None, None), Level.WARNING, "at most 1000"),  # the default
    (QueueProbe(2000, 2000, True), MosquittoConf(True, 5000, None), Level.WARNING,
     "at most 5000"),  # the file tells what the probe cannot
    (None, None, Level.INFO, "unknown: the ACL said no"),
])
def test_broker_queue(probe: QueueProbe | None, conf: MosquittoConf | None, level: Level,
                      words: str) -> None:
    queue = one(_broker(probe, None if probe else "the ACL said no", conf=conf), "broker.queue")
    assert queue.level is level and words in queue.message, queue
    assert ("max_queued_messages 0" in queue.fix) == (level is Level.WARNING)


def test_an_unknown_queue_limit_names_the_acl_line() -> None:
    queue = one(_broker(refused="refused"), "broker.queue")
    assert "topic readwrite citypilot/doctor/#" in queue.fix
    assert "citypilot-collector" in queue.fix


def test_a_forgotten_session_is_an_error() -> None:
    session = one(_broker(QueueProbe(2000, 0, False)), "broker.session")
    assert session.level is Level.ERROR


@pytest.mark.parametrize(("conf", "level"), [
    (None, Level.INFO), (MosquittoConf(), Level.WARNING),
    (MosquittoConf(persistence=False), Level.WARNING), (MosquittoConf(persistence=True),
                                                       Level.OK)])
def test_broker_persistence(conf: MosquittoConf | None, level: Level) -> None:
    assert one(_broker(conf=conf), "broker.persistence").level is level


@pytest.mark.parametrize(("dropped", "level"), [(None, Level.INFO), (0, Level.OK),
                                                (25, Level.WARNING)])
def test_broker_drops(dropped: int | None, level: Level) -> None:
    assert one(_broker(dropped=dropped), "broker.drops").level is level


def test_an_unreachable_broker_is_one_error() -> None:
    [finding] = checks.broker(BrokerFacts(B, error="refused"), None, "x")
    assert finding.id == "broker.connect" and finding.level is Level.ERROR


@pytest.mark.parametrize(("version", "level"), [("1.6.7~rc0", Level.OK), ("1.8.10", Level.OK),
                                                ("v2.7.1", Level.WARNING),
                                                (None, Level.WARNING)])
def test_store_version(version: str | None, level: Level) -> None:
    assert checks.store_version(version, "influx:8086/db").level is level


@pytest.mark.parametrize(("n", "limit", "level"), [
    (10, 100, Level.OK), (79, 100, Level.OK), (80, 100, Level.WARNING),
    (99, 100, Level.WARNING), (100, 100, Level.ERROR), (10**7, 0, Level.OK)])
def test_series_headroom(n: int, limit: int, level: Level) -> None:
    [series] = checks.headroom(Headroom({"db": n}, None, limit, 100_000, told=True))
    assert series.level is level
    assert ("refused" in series.message) == (level is Level.ERROR)


def test_tag_values_headroom_and_assumed_limits_say_so() -> None:
    found = checks.headroom(Headroom({}, ("air_quality", "device", 95_000), 1_000_000,
                                     100_000, told=False))
    values = one(found, "store.values_per_tag")
    assert values.level is Level.WARNING
    assert "'device' of 'air_quality' has 95000 values" in values.message
    assert "assumed" in values.message and "--max-values-per-tag" in values.message


@pytest.mark.parametrize(("free", "used", "writable", "level"), [
    (10 << 30, 0, True, Level.OK),
    (600 << 20, 500 << 20, True, Level.OK),  # the spool can still reach its bound
    (100 << 20, 0, True, Level.WARNING),  # the disk fills first
    (1 << 20, 0, True, Level.ERROR),  # not even two batches
    (10 << 30, 0, False, Level.ERROR),
    (None, 0, True, Level.ERROR),
])
def test_spool_disk(free: int | None, used: int, writable: bool, level: Level) -> None:
    finding = checks.spool("/var/spool", free=free, used=used, bound=1 << 30,
                           writable=writable, batch_bytes=1 << 20)
    assert finding.level is level, finding
    if level is Level.WARNING:
        assert "CITYPILOT_SPOOL_MAX_BYTES" in finding.fix


def test_gateway_clocks() -> None:
    found = checks.gateway_clocks([
        GatewayDelay("p1", "ok", 0.2, 30.0),  # late at times, never early: fine
        GatewayDelay("p1", "ahead", -12.5, 1.0),
        GatewayDelay("p1", "behind", 400.0, 900.0),
        GatewayDelay("p1", "jitter", -1.0, 0.5),  # within the tolerance
    ], window_s=3600, future=0, max_future_s=300)
    assert [(f.level, f.message.split()[1]) for f in found] == [
        (Level.WARNING, "p1/ahead's"), (Level.WARNING, "reading")]
    assert "12.5 s ahead" in found[0].message and "p1/behind" in found[1].message


def test_future_dead_letters_and_the_clean_case() -> None:
    [future] = checks.gateway_clocks([], window_s=3600, future=3, max_future_s=300)
    assert future.id == "clock.future" and "replay --reason future_timestamp" in future.fix
    [clean] = checks.gateway_clocks([GatewayDelay("p", "g", 0.1, 2.0)], window_s=7200,
                                    future=0, max_future_s=300)
    assert clean.level is Level.OK and "last 2 h" in clean.message


@pytest.mark.parametrize(("offset", "level"), [(None, Level.INFO), (1.0, Level.OK),
                                               (-5.0, Level.OK), (30.0, Level.WARNING)])
def test_store_clock(offset: float | None, level: Level) -> None:
    assert checks.store_clock(offset, "influx").level is level


@pytest.mark.parametrize(("left_days", "level"), [(400, Level.OK), (31, Level.OK),
                                                  (29, Level.WARNING), (-1, Level.ERROR)])
def test_certificate_expiry(left_days: float, level: Level) -> None:
    now = 1.7e9
    [f] = checks.certificates([Certificate("ca.crt", "'CA'", now + left_days * DAY)], now)
    assert f.level is level
    assert ("expired" in f.message) == (left_days < 0)


def test_an_unreadable_certificate_is_an_error() -> None:
    [f] = checks.certificates([Certificate("broker:8883", "", None, "refused: expired")], 0)
    assert f.level is Level.ERROR and "refused: expired" in f.message


def test_secrets() -> None:
    found = checks.secrets(["CITYPILOT_MQTT_URL"], ["0123456789ab"])
    assert [(f.id, f.level) for f in found] == [("secrets.shipped", Level.ERROR),
                                                 ("secrets.demo_key", Level.WARNING)]
    assert found[1].fix == "citypilot apikey revoke 0123456789ab"
    assert [f.level for f in checks.secrets([], [])] == [Level.OK]


@pytest.mark.parametrize(("lag", "level"), [(None, Level.INFO), (59.0, Level.OK),
                                            (3600.0, Level.WARNING), (math.inf, Level.WARNING)])
def test_rollup_lag(lag: float | None, level: Level) -> None:
    assert checks.rollup_lag(lag).level is level
