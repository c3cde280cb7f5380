"""The simulators: deterministic, realistic where KPIs look, and honest about what they send.

The decoder test is the proof that `--summary-json` is right: every generated message goes
through the real `NativeDecoder`, and the points it yields (de-duplicated the way a store
de-duplicates them) and the dead letters must be exactly what the summary counts.
"""

from __future__ import annotations

import itertools
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from ingest import units
from ingest.decode.native import NativeDecoder
from ingest.model import Point
from simulators.cli import app, parse_duration
from simulators.deployment import FleetSpec
from simulators.environment import Environment
from simulators.faults import MAX_SKEW_MS, Fault, FaultSpec
from simulators.scenario import Scenario
from simulators.summary import Planned, Summary

START = 1_760_313_600_000  # Monday 2025-10-13 00:00 UTC: the scenario is pure, no clock needed
DAY = 86_400_000
HOUR = 3_600_000


def run_scenario(scenario: Scenario, backfill_days: float, live_s: float = 0.0,
                 rate: float = 100.0) -> tuple[list[Planned], Summary]:
    """History, then a live window, as `citypilot simulate` runs them (pinned start)."""
    summary = Summary(phase="backfill")
    messages = list(scenario.window(START - round(backfill_days * DAY), START))
    for m in messages:
        summary.record(m.expect)
    summary.phase = "live"
    live = list(scenario.window(START, START + round(live_s * 1000),
                                scenario.speedup_for(rate, START)))
    for m in live:
        summary.record(m.expect)
    return messages + live, summary


@pytest.fixture(scope="module")
def history() -> list[dict[str, Any]]:
    """Three weeks of a pilot with every kind once, as decoded JSON with topics."""
    messages, _ = run_scenario(Scenario(FleetSpec(1, 1, 14, seed=7)), backfill_days=21)
    return [{**orjson.loads(m.payload), "topic": m.topic} for m in messages]


def of_kind(history: list[dict[str, Any]], kind: str) -> Iterator[dict[str, Any]]:
    return (d for d in history if d.get("kind") == kind)


# -- determinism ----------------------------------------------------------------------------

def test_same_seed_and_window_give_the_same_bytes() -> None:
    def take(seed: int) -> list[tuple[str, bytes, Any, int]]:
        scenario = Scenario(FleetSpec(2, 2, 7, seed=seed), FaultSpec(0.2))
        msgs, _ = run_scenario(scenario, backfill_days=1, live_s=30)
        return [tuple(m) for m in msgs]

    first = take(1)
    assert first == take(1)
    assert first != take(2)
    assert len(first) > 1_000


def test_fleet_layout_ids_and_inventory() -> None:
    scenario = Scenario(FleetSpec(pilots=2, gateways=3, devices=5, seed=1, pilot_prefix="cp"))
    infos = scenario.devices
    assert len([i for i in infos if i.role == "gateway"]) == 6
    assert len([i for i in infos if i.role != "gateway"]) == 2 * 3 * 5
    assert {i.pilot for i in infos} == {"cp-01", "cp-02"}
    assert len({(i.pilot, i.device) for i in infos}) == len(infos)
    sensors = {i.kind for i in infos if i.role == "sensor"}
    services = {i.kind for i in infos if i.role == "service"}
    assert len(sensors) >= 8 and len(services) >= 4


# -- the proof of the summary ---------------------------------------------------------------

def decode(messages: list[Planned]) -> tuple[dict[tuple[Any, ...], Point], int]:
    decoder = NativeDecoder()
    points: dict[tuple[Any, ...], Point] = {}
    rejections = 0
    for m in messages:
        if not m.expect.send:
            continue
        # received after any timestamp the message may carry (skews stay within two minutes)
        out = decoder(m.topic, m.payload, (m.at_ms + MAX_SKEW_MS + 10_000) * 1_000_000)
        assert len(out.rejections) == int(m.expect.malformed), (m, out.rejections)
        assert not out.unknown_metrics, out.unknown_metrics
        new = [p for p in out.points if (p.measurement, p.tags, p.ts) not in points]
        assert len(new) == int(m.expect.stores and not m.expect.malformed), (m, out.points)
        for p in out.points:
            points[(p.measurement, p.tags, p.ts)] = p
        rejections += len(out.rejections)
    return points, rejections


def test_summary_counts_are_exactly_what_the_decoder_stores() -> None:
    scenario = Scenario(FleetSpec(1, 2, 14, seed=3), FaultSpec(0.3))
    messages, summary = run_scenario(scenario, backfill_days=3, live_s=120, rate=200)
    points, rejections = decode(messages)

    stored: Counter[str] = Counter()
    events: Counter[str] = Counter()
    for measurement, tags, _ in points:
        if measurement == "event":
            events[dict(tags)["service"]] += 1
        elif measurement != "device_status":
            stored[measurement] += 1
    report = summary.to_json()
    assert report["readings"] == dict(stored)
    assert report["events"] == dict(events)
    assert report["statuses"] == sum(1 for k in points if k[0] == "device_status")
    assert report["malformed"] == rejections > 0
    assert set(report["faults"]) == {f.value for f in Fault}
    sent = Counter(m.expect.channel for m in messages if m.expect.send)
    assert report["messages"] == {c: sent[c] for c in ("telemetry", "event", "status")}
    assert report["phases"]["live"] > 0 and report["phases"]["backfill"] > 0
    assert all(isinstance(v, int) for part in ("messages", "readings", "events")
               for v in report[part].values())


def test_without_faults_every_message_stores_with_registered_in_range_values() -> None:
    messages, summary = run_scenario(Scenario(FleetSpec(2, 1, 14, seed=5)), backfill_days=2,
                                     live_s=60)
    points, rejections = decode(messages)
    assert rejections == 0 and summary.malformed == summary.dropped == 0
    assert not summary.faults and summary.duplicates == 0
    for p in points.values():
        for name, value in p.fields.items():
            metric = units.lookup(name)
            if p.measurement not in ("event", "device_status") and name != "ingest_delay_s":
                assert metric is not None and metric.in_range(float(value)), (p, name)
    assert len(summary.readings) >= 8 and len(summary.events) >= 4


# -- rhythms and correlations ---------------------------------------------------------------

def test_no2_noise_and_traffic_peak_at_rush_hour(history: list[dict[str, Any]]) -> None:
    env = Environment(7, "pilot-01", 1, 41.4)  # the first pilot's city: UTC+1

    def mean_at(kind: str, name: str, hours: tuple[int, int], weekdays: bool) -> float:
        return statistics.mean(
            d["values"][name] for d in of_kind(history, kind)
            if hours[0] <= env.hour(d["ts"]) < hours[1]
            and (env.weekday(d["ts"]) < 5 or not weekdays))

    assert mean_at("air_quality", "no2", (7, 9), True) > 2 * mean_at("air_quality", "no2",
                                                                     (3, 5), False)
    assert mean_at("noise", "noise_laeq", (7, 9), True) > mean_at("noise", "noise_laeq",
                                                                  (3, 5), False) + 5
    assert mean_at("traffic", "vehicle_count", (17, 19), True) > 4 * mean_at(
        "traffic", "vehicle_count", (3, 5), False)
    assert mean_at("lighting", "power", (22, 23), False) > 5 * mean_at("lighting", "power",
                                                                       (12, 14), False)


def test_parking_respects_capacity_and_sessions_follow_occupancy(
        history: list[dict[str, Any]]) -> None:
    scenario = Scenario(FleetSpec(1, 1, 14, seed=7))
    capacity = {i.device: i.capacity for i in scenario.devices if i.kind == "parking"}
    occupancy: defaultdict[int, list[float]] = defaultdict(list)
    for d in of_kind(history, "parking"):
        occ = d["values"]["occupancy"]
        cap = capacity[d["topic"].split("/")[4]]
        assert cap is not None and 0.0 <= occ <= 1.0
        assert abs(occ * cap - round(occ * cap)) < 1e-2  # whole bays
        occupancy[d["ts"] // HOUR].append(occ)
    starts = Counter(d["ts"] // HOUR for d in history
                     if d.get("service") == "parking" and d["type"] == "session_start")
    hours = sorted(occupancy)
    r = statistics.correlation([statistics.mean(occupancy[h]) for h in hours],
                               [float(starts[h]) for h in hours])
    assert r > 0.6, r
    open_sessions: Counter[str] = Counter()
    for d in history:  # sessions of one terminal never exceed its zone's bays
        if d.get("service") == "parking":
            device = d["topic"].split("/")[4]
            open_sessions[device] += {"session_start": 1, "session_end": -1}.get(d["type"], 0)
            assert 0 <= open_sessions[device] <= (capacity[device] or 0)


def test_users_are_pseudonymous_and_come_back_at_plausible_rates(
        history: list[dict[str, Any]]) -> None:
    week = START - 7 * DAY
    shares = {}
    for service in ("parking", "bike_sharing", "ev_charging", "kiosk", "city_app"):
        uses = [(d["ts"], d["user"]) for d in history if d.get("service") == service
                and d["type"] in ("use", "session_start")]
        before = {u for ts, u in uses if ts < week}
        last_week = {u for ts, u in uses if ts >= week}
        shares[service] = len(last_week & before) / len(last_week)
        assert all(len(u) == 17 and u[0] == "u" and int(u[1:], 16) >= 0 for _, u in uses)
    assert 0.1 <= shares["kiosk"] <= 0.4, shares  # visitors
    for service in ("parking", "bike_sharing", "ev_charging", "city_app"):
        assert 0.45 <= shares[service] <= 0.9, shares  # residents come back
    assert shares["ev_charging"] > shares["kiosk"]


@pytest.mark.parametrize("at", [START + 2 * HOUR, START + 12 * HOUR])  # night and noon
def test_live_rate_is_met_at_any_time_of_day(at: int) -> None:
    scenario = Scenario(FleetSpec(2, 2, 10, seed=1))
    live = list(scenario.window(at, at + 600_000, scenario.speedup_for(50, at)))
    assert 0.85 * 50 * 600 <= len(live) <= 1.15 * 50 * 600
    assert all(a.at_ms <= b.at_ms for a, b in itertools.pairwise(live))


# -- faults ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.05, 0.2])
def test_faults_are_injected_at_the_configured_fraction(fraction: float) -> None:
    _, summary = run_scenario(Scenario(FleetSpec(1, 2, 14, seed=11), FaultSpec(fraction)),
                              backfill_days=5, live_s=300, rate=100)
    share = sum(summary.faults.values()) / summary.scheduled
    assert abs(share - fraction) < 0.25 * fraction, share
    assert summary.faults[Fault.DROPOUT] and summary.faults[Fault.MALFORMED]


def test_fault_mix_can_be_narrowed() -> None:
    weights = FaultSpec.parse_weights("duplicate=1, malformed=1")
    _, summary = run_scenario(Scenario(FleetSpec(1, 1, 14, seed=2), FaultSpec(0.5, weights)),
                              backfill_days=0.5)
    assert set(summary.faults) == {Fault.DUPLICATE, Fault.MALFORMED}
    assert summary.duplicates == summary.faults[Fault.DUPLICATE]
    with pytest.raises(ValueError, match="fault"):
        FaultSpec.parse_weights("gremlins=2")
    with pytest.raises(ValueError):
        FaultSpec(1.5)


# -- the command line -----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("10s", 10.0), ("5m", 300.0), ("1.5m", 90.0), ("2h", 7_200.0),
    ("30d", 2_592_000.0), ("250ms", 0.25), ("0", 0.0),
])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "5x", "m5", "-3s", "1e3"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize("args", [
    ["--duration", "soon"], ["--faults", "2"], ["--backfill", "a month"],
    ["--fault-mix", "gremlins=1"], ["--mqtt-url", "http://x"], ["--pilots", "0"],
    ["--start", "yesterday"], ["--start", "2999-01-01T00:00:00Z"], ["--backfill", "20000d"],
    ["--pilot-prefix", "bad/prefix"],
])
def test_cli_rejects_bad_options_with_exit_2(args: list[str]) -> None:
    if "--mqtt-url" not in args:  # nothing listens there: a missed check would exit 1
        args = [*args, "--mqtt-url", "mqtt://127.0.0.1:9"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output


def test_demo_summary_rate_is_the_current_one_not_the_average_since_start() -> None:
    from citypilot.status import CurrentRate

    rate = CurrentRate(0, at=0.0)
    assert rate.update(0, at=10.0) == 0.0  # ten idle seconds before the simulators start
    assert [rate.update(100 * s, at=10.0 + s) for s in (1, 2, 3)] == [100.0, 100.0, 100.0]
    assert rate.update(300, at=15.0) == 0.0  # the simulators stopped
