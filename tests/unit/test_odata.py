"""The SensorThings query options: `$filter` parsed and checked entity by entity, the time
window taken out of it for the store, and every unsupported form refused with a message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.open.sta.odata import (
    MAX_TOP,
    ODataError,
    Time,
    matches,
    parse_filter,
    parse_options,
    parse_time,
    time_bounds,
)

T0 = parse_time("2024-01-15T00:00:00Z")
OBS = {"phenomenonTime": Time(T0), "result": 42.0, "name": "it's", "properties": {"k": "a"}}


@pytest.mark.parametrize(("text", "expected"), [
    ("result eq 42", True), ("result ne 42", False), ("result gt 41.5", True),
    ("result ge 42", True), ("result lt 42", False), ("result le 4.2e1", True),
    ("42 lt result", False), ("name eq 'it''s'", True), ("properties/k eq 'a'", True),
    ("not (result eq 42)", False), ("result eq 1 or name eq 'it''s'", True),
    ("result eq 42 and not result gt 50", True), ("missing eq null", True),
    ("phenomenonTime ge 2024-01-15T00:00:00Z and phenomenonTime lt 2024-01-15T01:00+01:00",
     False),
    ("phenomenonTime lt 2024-01-15T01:00:00+00:00", True), ("result gt 'text'", False),
])
def test_filters_decide_as_odata_says(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), OBS) is expected


@pytest.mark.parametrize(("text", "needle"), [
    ("substringof('a', name)", "function"), ("result add 1 eq 2", "not supported"),
    ("result eq", "ends too early"), ("(result eq 1", "parenthesis"),
    ("result eq 1 result", "unexpected"), ("name eq 'open", "not supported"),
    ("phenomenonTime gt 2024-13-01T00:00:00Z", "ISO 8601"), ("eq 1", "operand"),
])
def test_what_is_not_served_is_a_clear_error(text: str, needle: str) -> None:
    with pytest.raises(ODataError, match=needle):
        parse_filter(text)


def test_time_bounds_are_the_conjuncts_on_the_property() -> None:
    node = parse_filter("phenomenonTime ge 2024-01-15T00:00:00Z and result gt 3 and "
                        "2024-01-16T00:00:00Z gt phenomenonTime")
    assert time_bounds(node, "phenomenonTime") == (T0, T0 + 86400 * 10**9)
    either = parse_filter("phenomenonTime lt 2024-01-15T00:00:00Z or result gt 3")
    assert time_bounds(either, "phenomenonTime") == (None, None)
    assert time_bounds(parse_filter("phenomenonTime gt 2024-01-15T00:00:00Z"),
                       "phenomenonTime") == (T0 + 1, None)


@given(st.integers(min_value=-(10**15), max_value=10**15),
       st.integers(min_value=-(10**15), max_value=10**15))
def test_a_point_inside_the_bounds_is_the_point_that_matches(at: int, edge: int) -> None:
    """Whatever the window, the store's [lo, hi) keeps exactly the points the filter keeps."""
    point = {"phenomenonTime": Time(T0 + at * 1000)}
    moment = f"{_iso(T0 + edge * 1000)}"
    for op in ("gt", "ge", "lt", "le", "eq"):
        node = parse_filter(f"phenomenonTime {op} {moment}")
        lo, hi = time_bounds(node, "phenomenonTime")
        ns = point["phenomenonTime"].ns
        inside = (lo is None or ns >= lo) and (hi is None or ns < hi)
        assert inside is matches(node, point), op


def _iso(ns: int) -> str:
    from datetime import UTC, datetime, timedelta
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def test_options_are_checked() -> None:
    options = parse_options({"$top": "5", "$skip": "10", "$count": "true",
                             "$orderby": "name desc,id", "$select": "name, id",
                             "$expand": "Datastreams($top=2;$filter=name eq 'a;b')"},
                            {"Datastreams", "Locations"})
    assert (options.top, options.skip, options.count) == (5, 10, True)
    assert options.orderby == (("name", True), ("id", False))
    assert options.select == ("name", "id")
    assert options.expand["Datastreams"].top == 2
    assert matches(options.expand["Datastreams"].filter, {"name": "a;b"})  # type: ignore[arg-type]
    for bad, needle in [({"$top": str(MAX_TOP + 1)}, "whole number"), ({"$top": "-1"}, "whole"),
                        ({"$count": "yes"}, "true or false"), ({"$search": "x"}, "not a query"),
                        ({"$expand": "Sensor"}, "not a navigation"),
                        ({"$expand": "Datastreams/Observations"}, "one level"),
                        ({"$expand": "Datastreams($expand=Thing)"}, "one level"),
                        ({"$resultFormat": "dataArray"}, "default format")]:
        with pytest.raises(ODataError, match=needle):
            parse_options(bad, {"Datastreams"})
