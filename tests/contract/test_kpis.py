"""Every KPI on both stores, against values computed by hand from a small hand-built pilot.

The pilot is in Europe/Berlin (UTC+1 in January), so a bucket is a local day from 23:00 UTC:
a store or a KPI that bucketed by UTC would move readings between the two days. The expected
values are written out with their arithmetic, from the data listed in `seed`.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from api.catalog import Device, Pilot, Service
from api.kpis.definitions import KPIS
from api.kpis.periods import Grain, to_ns
from api.kpis.service import KpiOptions, KpiRequestError, compute
from ingest.model import Point
from ingest.stores import open_reader, open_store
from ingest.stores.base import Reader

BERLIN = ZoneInfo("Europe/Berlin")
H, M, D = 3600 * 10**9, 60 * 10**9, 86400 * 10**9
T = to_ns(datetime(2024, 1, 15, tzinfo=BERLIN))  # Monday 00:00 local = 2024-01-14T23:00Z
NOW = T + 10 * D
URL_FIXTURES = {"sqlite": "sqlite_url", "influxdb": "influx_url"}

PILOT = Pilot(
    id="p1", timezone="Europe/Berlin", lighting_baseline_kwh_per_day=10.0,
    services=(Service(id="parking", capacity=4),),
    devices=(
        Device(id="aq1", gateway="g1", kind="air_quality", interval_s=3600),
        Device(id="ghost", gateway="g1", kind="air_quality", interval_s=3600),  # silent
        Device(id="pk1", gateway="g1", kind="parking", interval_s=3600, capacity=10),
        Device(id="pk2", gateway="g1", kind="parking", interval_s=3600, capacity=30),
        Device(id="term1", gateway="g1", service="parking"),
        Device(id="term2", gateway="g1", service="parking"),  # never used
        Device(id="lamp1", gateway="g1", kind="lighting", interval_s=3600),
        Device(id="nz1", gateway="g1", kind="noise", interval_s=3600),
    ))


def reading(kind: str, device: str, ts: int, delay: float, gateway: str = "g1",
            pilot: str = "p1", **values: float) -> Point:
    return Point(kind, (("pilot", pilot), ("gateway", gateway), ("device", device)),
                 {**values, "ingest_delay_s": delay}, ts)


def event(ts: int, user: str, service: str, type_: str, device: str,
          pilot: str = "p1") -> Point:
    tags = (("pilot", pilot), ("gateway", "g1"), ("device", device), ("service", service),
            ("type", type_))
    return Point("event", tags, {"value": 1.0, "user": user, "ingest_delay_s": 0.5}, ts)


def letter(ts: int, topic: str) -> Point:
    return Point("dead_letter", (("reason", "bad_json"),),
                 {"topic": topic, "payload": "{", "detail": "x"}, ts)


def seed() -> list[Point]:
    day1 = T + D
    pts = [
        # uses: day 0 parking u1 u2 u3 (+ a session_end), kiosk u3; day 1 parking u1,
        # kiosk u4 twice (+ a feedback); history: u1 parking T-3d, u4 kiosk T-10d,
        # u6 parking T-8d.
        event(T + 9 * H, "u1", "parking", "session_start", "term1"),
        event(T + 9 * H + 30 * M, "u2", "parking", "session_start", "term1"),
        event(T + 9 * H + 45 * M, "u1", "parking", "session_end", "term1"),
        event(T + 10 * H, "u3", "kiosk", "use", "kiosk1"),
        event(T + 14 * H, "u3", "parking", "session_start", "term1"),
        event(day1 + 8 * H, "u1", "parking", "session_start", "term1"),
        event(day1 + 8 * H + 10 * M, "u4", "kiosk", "use", "kiosk1"),
        event(day1 + 8 * H + 20 * M, "u4", "kiosk", "use", "kiosk1"),
        event(day1 + 8 * H + 30 * M, "u5", "parking", "feedback", "term1"),
        event(T - 3 * D + 12 * H, "u1", "parking", "session_start", "term1"),
        event(T - 10 * D + 12 * H, "u4", "kiosk", "use", "kiosk1"),
        event(T - 8 * D + 12 * H, "u6", "parking", "use", "term1"),
        # another pilot's data, which no KPI of p1 may count
        event(T + 9 * H, "u1", "parking", "use", "term1", pilot="p2"),
        reading("air_quality", "aq9", T + 5 * H, 99.0, pilot="p2", no2=999.0, pm10=999.0,
                pm25=999.0),
        # parking occupancy: pk1 hour 0 (0.5, 1.0), hour 1 (0.25); pk2 day 0 hour 2 (0.1),
        # day 1 hours 0 and 23 (0.8)
        reading("parking", "pk1", T, 2.0, occupancy=0.5),
        reading("parking", "pk1", T + 30 * M, 2.0, occupancy=1.0),
        reading("parking", "pk1", T + H, 2.0, occupancy=0.25),
        reading("parking", "pk2", T + 2 * H, 2.0, occupancy=0.1),
        reading("parking", "pk2", day1, 2.0, occupancy=0.8),
        reading("parking", "pk2", day1 + 23 * H, 2.0, occupancy=0.8),
        # street lighting: 2000 Wh + 3000 Wh on day 0
        reading("lighting", "lamp1", T + 18 * H, 3.0, energy=2000.0),
        reading("lighting", "lamp1", T + 19 * H, 3.0, energy=3000.0),
        # noise: day 0 day part 60, 70; evening 65; night 50 (23:30); day 1 day part only
        reading("noise", "nz1", T + 8 * H, 4.0, noise_laeq=60.0),
        reading("noise", "nz1", T + 9 * H, 4.0, noise_laeq=70.0),
        reading("noise", "nz1", T + 20 * H, 4.0, noise_laeq=65.0),
        reading("noise", "nz1", T + 23 * H + 30 * M, 4.0, noise_laeq=50.0),
        reading("noise", "nz1", day1 + 10 * H, 4.0, noise_laeq=55.0),
        # unregistered x1 on g2 (default interval 300 s): day 1, two readings in hour 1
        reading("air_quality", "x1", day1 + H, 9.0, gateway="g2", no2=500.0, pm10=55.0,
                pm25=26.0),
        reading("air_quality", "x1", day1 + H + 5 * M, 10.0, gateway="g2", no2=500.0,
                pm10=55.0, pm25=26.0),
        # dead letters on day 0: two on p1's topics, one of p2, one of another format
        letter(T + H, "citypilot/v1/p1/g1/aq1/telemetry"),
        letter(T + 2 * H, "citypilot/v1/p1/g1/pk1/telemetry"),
        letter(T + 3 * H, "citypilot/v1/p2/g1/aq9/telemetry"),
        letter(T + 4 * H, "ttn/v3/app/devices/x/up"),
    ]
    # aq1 day 0: hourly, delay = the hour, NO2 250 at hours 5 and 6 else 100, PM10 60, PM2.5 10
    pts += [reading("air_quality", "aq1", T + h * H, float(h), no2=250.0 if h in (5, 6)
                    else 100.0, pm10=60.0, pm25=10.0) for h in range(24)]
    # aq1 day 1: hours 0-11 and 03:30; NO2 100 but 300 at 03:00 and 120 at 03:30 (mean
    # 210); PM10 40, PM2.5 20; delay 1 s
    pts += [reading("air_quality", "aq1", day1 + h * H, 1.0, no2=300.0 if h == 3 else 100.0,
                    pm10=40.0, pm25=20.0) for h in range(12)]
    pts.append(reading("air_quality", "aq1", day1 + 3 * H + 30 * M, 1.0, no2=120.0, pm10=40.0,
                       pm25=20.0))
    return pts


def lden(day: float, evening: float, night: float) -> float:
    return 10 * math.log10((12 * day + 4 * evening * 10**0.5 + 8 * night * 10) / 24)


OLD, NEW = "Directive 2008/50/EC", "Directive (EU) 2024/2881"
# kpi id -> per bucket (day 0, day 1): {dimension values: value or the null's reason}
EXPECTED: dict[str, list[dict[tuple[str, ...], float | str]]] = {
    "usage_events": [{("kiosk",): 1, ("parking",): 3}, {("kiosk",): 2, ("parking",): 1}],
    "active_users_daily": [{(): 3}, {(): 2}],  # {u1, u2, u3}; {u1, u4}
    # 7 days to the end of day 0: u1 (T-3d), u1 u2 u3; to day 1: plus u4
    "active_users_weekly": [{(): 3}, {(): 4}],
    # the 28 days before those weeks hold u4 and u6: day 0 none of 3, day 1 u4 of 4
    "returning_user_rate": [{(): 0.0}, {(): 25.0}],
    # this week parking 4 (T-3d + 3), kiosk 1; the week before parking 1 (T-8d), kiosk 1
    # (T-10d); day 1: parking 5, kiosk 3 against 1 and 1
    "usage_growth_wow": [{("kiosk",): 0.0, ("parking",): 300.0},
                         {("kiosk",): 200.0, ("parking",): 400.0}],
    # pk1 mean of hourly means (0.75, 0.25) = 0.5, weight 10; pk2 0.1, weight 30
    "utilisation": [{("parking",): 100 * (10 * 0.5 + 30 * 0.1) / 40}, {("parking",): 80.0}],
    # parking: two uses in 09:00-10:00 of day 0, one on day 1, capacity 4
    "peak_demand_ratio": [{("kiosk",): "no capacity registered for service kiosk",
                           ("parking",): 0.5},
                          {("kiosk",): "no capacity registered for service kiosk",
                           ("parking",): 0.25}],
    # parking: term1 and term2; kiosk: kiosk1 seen
    "usage_per_device": [{("kiosk",): 1.0, ("parking",): 1.5},
                         {("kiosk",): 2.0, ("parking",): 0.5}],
    # 8 registered, plus kiosk1 (day 0 and 1) and x1 (day 1)
    "devices_deployed": [{(): 9}, {(): 10}],
    # in the 2 h before day 0 ends: aq1 (22:00, 23:00) and nz1 (23:30); before day 1 ends:
    # pk2 (23:00)
    "devices_online": [{(): 2}, {(): 1}],
    # Each sensor counts from its first reading's hour (none has an installation date):
    # day 0 aq1 and pk1 from 00:00, pk2 02:00, nz1 08:00, lamp1 18:00; ghost, silent, all
    # day; x1 from day 1 01:00. Hours with data: aq1 24/24, ghost 0/24, pk1 2/24, pk2
    # 1/22, lamp1 2/6, nz1 4/16; day 1: aq1 12/24, pk2 2/24, nz1 1/24, x1 1/23 (its two
    # readings share an hour), others 0/24
    "availability": [{(): 100 * (1 + 0 + 2 / 24 + 1 / 22 + 2 / 6 + 4 / 16) / 6},
                     {(): 100 * ((12 + 2 + 1) / 24 + 1 / 23) / 7}],
    # readings (at most the expected) over the expected: day 0 (24 + 3 + 1 + 2 + 4) of
    # 24 + 24 + 24 + 22 + 6 + 16; day 1 (13 + 2 + 1 + 2) of 6 x 24 + 23 x 12 (x1: 300 s)
    "data_completeness": [{(): 100 * (24 + 3 + 1 + 2 + 4) / 116},
                          {(): 100 * (13 + 2 + 1 + 2) / (6 * 24 + 23 * 12)}],
    # day 0: 2 dead letters of p1; stored: aq1 24, pk1 3, pk2 1, lamp1 2, nz1 4, 5 events
    "rejection_rate": [{(): 100 * 2 / (2 + 39)}, {(): 0.0}],
    # nearest rank: day 0 air quality 0..23 -> 23rd of 24 = 22; day 1: 13 x 1 s, 9, 10 ->
    # 14th of 15 = 9
    "ingest_delay_p95": [{("air_quality",): 22.0, ("event",): 0.5, ("lighting",): 3.0,
                          ("noise",): 4.0, ("parking",): 2.0},
                         {("air_quality",): 9.0, ("event",): 0.5,
                          ("lighting",): "no lighting readings in the period",
                          ("noise",): 4.0, ("parking",): 2.0}],
    "no2_hourly_exceedances": [{("g1", "aq1"): 2}, {("g1", "aq1"): 1, ("g2", "x1"): 1}],
    # daily means of NO2: aq1 (22 x 100 + 2 x 250) / 24 = 112.5, then 1520 / 13; x1 500
    "no2_daily_exceedances": [{("g1", "aq1"): 1}, {("g1", "aq1"): 1, ("g2", "x1"): 1}],
    "no2_mean": [{("g1", "aq1"): 112.5}, {("g1", "aq1"): 1520 / 13, ("g2", "x1"): 500.0}],
    "pm10_daily_exceedances": [{("g1", "aq1"): 1}, {("g1", "aq1"): 0, ("g2", "x1"): 1}],
    # the 2030 limit of 45 µg/m³: aq1 60 then 40, x1 55
    "pm10_daily_exceedances_2030": [{("g1", "aq1"): 1}, {("g1", "aq1"): 0, ("g2", "x1"): 1}],
    "pm10_mean": [{("g1", "aq1"): 60.0}, {("g1", "aq1"): 40.0, ("g2", "x1"): 55.0}],
    # 25 µg/m³: aq1 10 then 20, x1 26
    "pm25_daily_exceedances": [{("g1", "aq1"): 0}, {("g1", "aq1"): 0, ("g2", "x1"): 1}],
    "pm25_mean": [{("g1", "aq1"): 10.0}, {("g1", "aq1"): 20.0, ("g2", "x1"): 26.0}],
    # allowances minus the exceedances from 1 January 2024 to each day's end (the counts
    # above, summed over the two days); aq1 on day 0, aq1 and x1 on day 1
    "exceedances_left": [
        {("no2_hourly_exceedances", OLD, "g1", "aq1"): 18 - 2,
         ("no2_hourly_exceedances", NEW, "g1", "aq1"): 3 - 2,
         ("no2_daily_exceedances", NEW, "g1", "aq1"): 18 - 1,
         ("pm10_daily_exceedances", OLD, "g1", "aq1"): 35 - 1,
         ("pm10_daily_exceedances_2030", NEW, "g1", "aq1"): 18 - 1,
         ("pm25_daily_exceedances", NEW, "g1", "aq1"): 18 - 0},
        {("no2_hourly_exceedances", OLD, "g1", "aq1"): 18 - 3,
         ("no2_hourly_exceedances", NEW, "g1", "aq1"): 3 - 3,
         ("no2_hourly_exceedances", OLD, "g2", "x1"): 18 - 1,
         ("no2_hourly_exceedances", NEW, "g2", "x1"): 3 - 1,
         ("no2_daily_exceedances", NEW, "g1", "aq1"): 18 - 2,
         ("no2_daily_exceedances", NEW, "g2", "x1"): 18 - 1,
         ("pm10_daily_exceedances", OLD, "g1", "aq1"): 35 - 1,
         ("pm10_daily_exceedances", OLD, "g2", "x1"): 35 - 1,
         ("pm10_daily_exceedances_2030", NEW, "g1", "aq1"): 18 - 1,
         ("pm10_daily_exceedances_2030", NEW, "g2", "x1"): 18 - 1,
         ("pm25_daily_exceedances", NEW, "g1", "aq1"): 18 - 0,
         ("pm25_daily_exceedances", NEW, "g2", "x1"): 18 - 1}],
    "noise_lden": [{("g1", "nz1"): lden((10**6 + 10**7) / 2, 10**6.5, 10**5)},
                   {("g1", "nz1"): "no evening or night noise readings in the period"}],
    "lighting_energy_saving": [{(): 100 * (1 - 5 / 10)},
                               {(): "no lighting energy readings in the period"}],
}


def same(got: list[dict[tuple[str, ...], float | str]],
         want: list[dict[tuple[str, ...], float | str]]) -> bool:
    """Equal keys; numbers equal to 1e-9 relative, reasons equal."""
    return len(got) == len(want) and all(
        g.keys() == w.keys() and all(
            g[k] == w[k] if isinstance(w[k], str) or isinstance(g[k], str)
            else math.isclose(float(g[k]), float(w[k]), rel_tol=1e-9, abs_tol=1e-12)
            for k in w) for g, w in zip(got, want, strict=True))


async def seeded(request: pytest.FixtureRequest, points: list[Point]
                 ) -> AsyncIterator[Reader]:
    """A reader of a fresh store of the parametrized kind, holding `points`."""
    url = request.getfixturevalue(URL_FIXTURES[request.param])
    async with open_store(url) as store:
        assert await store.write(points) == []
    async with open_reader(url) as opened:
        yield opened


@pytest.fixture(params=sorted(URL_FIXTURES))
async def reader(request: pytest.FixtureRequest) -> AsyncIterator[Reader]:
    async for opened in seeded(request, seed()):
        yield opened


def test_every_kpi_has_expected_values() -> None:
    assert sorted(EXPECTED) == sorted(k.id for k in KPIS)


async def test_every_kpi_by_hand_on_both_stores(reader: Reader) -> None:
    failures: list[str] = []
    for kpi in KPIS:
        result = await compute(reader, PILOT, kpi.id, T, T + 2 * D, Grain.DAY, now_ns=NOW)
        got: list[dict[tuple[str, ...], float | str]] = [{}, {}]
        for v in result.values:
            bucket = [T, T + D].index(v.start)
            assert v.end == v.start + D
            assert tuple(k for k, _ in v.dims) == kpi.dimensions or v.value is None
            got[bucket][tuple(x for _, x in v.dims)] = v.value if v.value is not None \
                else str(v.reason)
        want = EXPECTED[kpi.id]
        if not same(got, want):
            failures.append(f"{kpi.id}: got {got}, want {want}")
    assert not failures, "\n".join(failures)


async def test_weeks_and_months_follow_the_local_calendar(reader: Reader) -> None:
    # One week bucket: Monday and Tuesday together.
    week = await compute(reader, PILOT, "usage_events", T, T + 2 * D, Grain.WEEK, now_ns=NOW)
    assert {(v.start, v.dims, v.value) for v in week.values} == {
        (T, (("service", "kiosk"),), 3.0), (T, (("service", "parking"),), 4.0)}
    # Two months: January holds every use (history included), February none.
    jan = to_ns(datetime(2024, 1, 1, tzinfo=BERLIN))
    feb, mar = to_ns(datetime(2024, 2, 1, tzinfo=BERLIN)), to_ns(datetime(2024, 3, 1,
                                                                         tzinfo=BERLIN))
    months = await compute(reader, PILOT, "usage_events", jan, mar, Grain.MONTH, now_ns=NOW)
    assert [(v.start, v.end, dict(v.dims)["service"], v.value) for v in months.values] == [
        (jan, feb, "kiosk", 4.0), (jan, feb, "parking", 6.0),
        (feb, mar, "kiosk", 0.0), (feb, mar, "parking", 0.0)]
    saving = await compute(reader, PILOT, "lighting_energy_saving", jan, mar, Grain.MONTH,
                           now_ns=mar)
    assert saving.values[0].value == pytest.approx(100 * (1 - 5 / (10 * 31)))
    assert saving.values[1].reason == "no lighting energy readings in the period"
    # Seen on January 25th, January's baseline covers 24 days so far.
    saving = await compute(reader, PILOT, "lighting_energy_saving", jan, feb, Grain.MONTH,
                           now_ns=NOW)
    assert saving.values[0].value == pytest.approx(100 * (1 - 5 / (10 * 24)))


async def test_periods_in_progress_count_up_to_now(reader: Reader) -> None:
    # Day 0 at 02:00: pk1 has two hours of data of two expected, pk2 none yet.
    result = await compute(reader, PILOT, "availability", T, T + D, Grain.DAY, now_ns=T + 2 * H)
    # aq1 2/2 (00:00, 01:00), pk1 2/2, nz1/lamp1/ghost/pk2 0/2 -> (1 + 1) / 6
    assert result.values[0].value == pytest.approx(100 * 2 / 6)
    later = await compute(reader, PILOT, "availability", T + D, T + 2 * D, Grain.DAY,
                          now_ns=T)
    assert later.values[0].value is None and later.values[0].reason == (
        "the period has not started")


async def test_an_unregistered_pilot_gets_nulls_and_zeros_not_errors(reader: Reader) -> None:
    nobody = Pilot(id="nobody")
    for kpi in KPIS:
        result = await compute(reader, nobody, kpi.id, T, T + D, Grain.DAY, now_ns=NOW)
        for v in result.values:
            assert v.value is not None or v.reason, kpi.id
            assert v.value in (None, 0.0), (kpi.id, v)


@pytest.mark.parametrize(("start", "end", "grain", "fields"), [
    (T, T, Grain.DAY, ("start", "end")),
    (T + D, T, Grain.DAY, ("start", "end")),
    (T, T + 500 * D, Grain.MONTH, ("start", "end")),
])
async def test_bad_periods_name_the_fields(sqlite_url: str, start: int, end: int,
                                           grain: Grain, fields: tuple[str, ...]) -> None:
    async with open_reader(sqlite_url) as st:
        with pytest.raises(KpiRequestError) as info:
            await compute(st, PILOT, "usage_events", start, end, grain,
                          options=KpiOptions(max_days=400))
    assert info.value.fields == fields


async def test_allowances_left_count_from_the_local_new_year(reader: Reader) -> None:
    # A bucket in the next year starts counting again; one not yet begun has no value.
    dec31 = to_ns(datetime(2023, 12, 31, tzinfo=BERLIN))
    jan1 = to_ns(datetime(2024, 1, 1, tzinfo=BERLIN))
    later = await compute(reader, PILOT, "exceedances_left", dec31, jan1 + D, Grain.DAY,
                          now_ns=NOW)
    assert [v.reason for v in later.values] == ["no air-quality readings this year"] * 2
    ahead = await compute(reader, PILOT, "exceedances_left", NOW + D, NOW + 2 * D, Grain.DAY,
                          now_ns=NOW)
    assert [v.reason for v in ahead.values] == ["the period has not started"]
    # In a period in progress, the year so far runs to now: all of day 0 and day 1 counted.
    month = await compute(reader, PILOT, "exceedances_left", jan1, NOW + 5 * D, Grain.MONTH,
                          now_ns=NOW)
    left = {(dict(v.dims)["indicator"], dict(v.dims)["regime"], dict(v.dims)["device"]): v.value
            for v in month.values}
    assert left[("no2_hourly_exceedances", NEW, "aq1")] == 0.0
    assert left[("pm25_daily_exceedances", NEW, "x1")] == 17.0


# A pilot that grows during a week (Monday T to Sunday): `dated` installed on Thursday and
# reporting hourly from Thursday noon to Saturday 23:00, `heard` (no date) first heard on
# Wednesday 06:20 and hourly to the end of the week, `late` installed on Saturday and silent
# since, `ghost` with neither.
GROWING = Pilot(id="p3", timezone="Europe/Berlin", devices=(
    Device(id="dated", gateway="g1", kind="air_quality", interval_s=3600,
           installed=date(2024, 1, 18)),
    Device(id="heard", gateway="g1", kind="air_quality", interval_s=3600),
    Device(id="late", gateway="g1", kind="noise", interval_s=3600, installed=date(2024, 1, 20)),
    Device(id="ghost", gateway="g1", kind="noise", interval_s=3600),
))


def growing() -> list[Point]:
    thursday_noon, wednesday = T + 3 * D + 12 * H, T + 2 * D + 6 * H + 20 * M
    return [reading("air_quality", "dated", thursday_noon + h * H, 1.0, pilot="p3", no2=1.0)
            for h in range(60)] + [
        reading("air_quality", "heard", wednesday + h * H, 1.0, pilot="p3", no2=1.0)
        for h in range(114)]


@pytest.fixture(params=sorted(URL_FIXTURES))
async def grown(request: pytest.FixtureRequest) -> AsyncIterator[Reader]:
    async for opened in seeded(request, growing()):
        yield opened


async def test_sensors_count_from_their_installation(grown: Reader) -> None:
    async def kpi(kpi_id: str, grain: Grain) -> list[float | None]:
        result = await compute(grown, GROWING, kpi_id, T, T + 7 * D, grain, now_ns=NOW)
        return [v.value for v in result.values]

    # The week: dated 60 of the 96 hours since Thursday 00:00, heard 114 of 114 (from
    # Wednesday 06:00, its first reading's hour), late 0 of 48, ghost 0 of 168.
    [week] = await kpi("availability", Grain.WEEK)
    assert week == pytest.approx(100 * (60 / 96 + 1 + 0 + 0) / 4)
    [week] = await kpi("data_completeness", Grain.WEEK)
    assert week == pytest.approx(100 * (60 + 114) / (96 + 114 + 48 + 168))
    # Days: Monday and Tuesday only the ghost counts; Wednesday heard 18 of 18; Thursday
    # dated 12 of 24; Saturday late joins; on Sunday dated is silent.
    days = await kpi("availability", Grain.DAY)
    assert days == pytest.approx([0.0, 0.0, 100 * 1 / 2, 100 * (12 / 24 + 1) / 3,
                                  100 * 2 / 3, 100 * 2 / 4, 100 * 1 / 4])
    sensors = await compute(grown, GROWING, "availability", T, T + 7 * D, Grain.DAY,
                            now_ns=NOW)
    assert [dict(v.extra)["sensors"] for v in sensors.values] == [1, 1, 2, 3, 3, 4, 4]
    # Deployed: a device with an installation day counts from it (dated on Thursday, late on
    # Saturday); heard and ghost have none and count all week.
    assert await kpi("devices_deployed", Grain.DAY) == [2.0, 2.0, 2.0, 3.0, 3.0, 4.0, 4.0]
