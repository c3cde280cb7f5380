"""`/open/v1/usage`: uses and distinct users per service and local day over the real store,
suppressed below the pilot's `open_min_users` (cells, and the totals over them), as JSON and CSV,
without a user id in any answer."""

from __future__ import annotations

import csv
import io

from api.catalog import OpenData
from ingest.stores import open_store
from tests.api.conftest import Live
from tests.api.test_open import opened  # noqa: F401 (a fixture)
from tests.contract.test_kpis import BERLIN, D, H, M, T, event

DAY = T + 14 * D  # a week after the seed's events, in p1's zone (Europe/Berlin)


async def _bikes(live: Live) -> None:
    """bikes: day 0 twelve users (one twice), day 1 three, day 2 eleven; a feedback (not
    a use) from 30 more on day 0. A minute apart: InfluxDB keeps one point per series and
    instant."""
    points = [event(DAY + 9 * H + i * M, f"b{i}", "bikes", "use", "dock1")
              for i in range(12)]
    points += [event(DAY + 10 * H, "b0", "bikes", "session_start", "dock1")]
    points += [event(DAY + D + 9 * H + i * M, f"b{i}", "bikes", "use", "dock1")
               for i in range(3)]
    points += [event(DAY + 2 * D + 9 * H + i * M, f"b{i}", "bikes", "use", "dock1")
               for i in range(20, 31)]
    points += [event(DAY + 11 * H + i * M, f"f{i}", "bikes", "feedback", "dock1")
               for i in range(30)]
    async with open_store(live.store_url) as store:
        assert await store.write(points) == []


def _day(n: int) -> str:
    from api.kpis.periods import from_ns

    return from_ns(DAY + n * D, BERLIN).date().isoformat()


async def test_usage_cells_are_suppressed_below_min_users(opened: Live) -> None:  # noqa: F811
    await _bikes(opened)
    start, end = (f"{_day(0)}T00:00:00+01:00", f"{_day(3)}T00:00:00+01:00")
    answer = await opened.get("/open/v1/usage", pilot="p1", start=start, end=end)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["min_users"] == 10 and "at least 10 distinct" in body["rule"]
    assert body["cells"] == [
        {"day": _day(0), "service": "bikes", "uses": 13, "users": 12},
        # day 1 has 3 users: suppressed; so is the total it is part of, or 27 - 13 - 11
        # would give day 1 away (and asking for day 2 alone shows its 11 anyway).
        {"day": _day(1), "service": "bikes", "uses": "c", "users": "c"},
        {"day": _day(2), "service": "bikes", "uses": 11, "users": 11}]
    assert body["totals"] == [{"service": "bikes", "uses": "c", "users": "c"}]
    alone = (await opened.get("/open/v1/usage", pilot="p1", start=f"{_day(2)}T00:00:00+01:00",
                              end=end)).json()
    assert alone["cells"] == body["cells"][2:]  # a cell reads the same in every answer
    assert alone["totals"] == [{"service": "bikes", "uses": 11, "users": 11}]
    text = answer.text
    for word in ("b0", "b1", "f1", "feedback", "user\""):
        assert word not in text, word
    table = list(csv.reader(io.StringIO((await opened.get(
        "/open/v1/usage", pilot="p1", start=start, end=end, format="csv")).text)))
    assert table[0] == ["day", "service", "uses", "users"]
    assert table[1:] == [[_day(0), "bikes", "13", "12"], [_day(1), "bikes", "c", "c"],
                         [_day(2), "bikes", "11", "11"], ["total", "bikes", "c", "c"]]
    # The seed's week: every parking and kiosk day has fewer than 10 users.
    seed_week = (await opened.get("/open/v1/usage", pilot="p1", start="2024-01-15T00:00:00"
                                  "+01:00", end="2024-01-17T00:00:00+01:00")).json()
    assert seed_week["cells"] and all(c["users"] == "c" for c in seed_week["cells"])
    assert all(t["uses"] == "c" for t in seed_week["totals"])


async def test_usage_needs_an_open_pilot_or_a_key(opened: Live) -> None:  # noqa: F811
    period = {"start": "2024-01-15T00:00:00+01:00", "end": "2024-01-16T00:00:00+01:00"}
    assert (await opened.get("/open/v1/usage", pilot="p2", **period)).status_code == 401
    keyed = await opened.get("/open/v1/usage", "viewer", pilot="p2", **period)
    assert keyed.status_code == 200 and keyed.json()["min_users"] == 10
    bad = await opened.get("/open/v1/usage", pilot="p1", start=period["end"],
                           end=period["start"])
    assert bad.status_code == 422
    assert OpenData().open_min_users == 10
