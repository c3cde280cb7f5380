"""OGC SensorThings API 1.1 over the seeded pilots: the service root, every entity set with
its mandatory properties (the checks of the OGC conformance suite's level 1, ported),
navigation to four levels, `$ref`, `$value`, the query options, and Observations that carry
the same values as the readings API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.api.conftest import Live
from tests.api.test_open import opened  # noqa: F401 (a fixture)
from tests.contract.test_kpis import H, T

STA = "/sta/v1.1"


def _utc(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


PUBLIC = "http://127.0.0.1:8080" + STA  # the default public URL
SETS = ["Things", "Locations", "HistoricalLocations", "Sensors", "ObservedProperties",
        "Datastreams", "Observations", "FeaturesOfInterest"]
# Each set's mandatory properties and navigation properties (STA 1.1, tables 2-16).
MANDATORY = {
    "Things": ({"name", "description"}, {"Locations", "HistoricalLocations", "Datastreams"}),
    "Locations": ({"name", "description", "encodingType", "location"},
                  {"Things", "HistoricalLocations"}),
    "HistoricalLocations": ({"time"}, {"Thing", "Locations"}),
    "Sensors": ({"name", "description", "encodingType", "metadata"}, {"Datastreams"}),
    "ObservedProperties": ({"name", "definition", "description"}, {"Datastreams"}),
    "Datastreams": ({"name", "description", "unitOfMeasurement", "observationType"},
                    {"Thing", "Sensor", "ObservedProperty", "Observations"}),
    "Observations": ({"phenomenonTime", "resultTime", "result"},
                     {"Datastream", "FeatureOfInterest"}),
    "FeaturesOfInterest": ({"name", "description", "encodingType", "feature"},
                           {"Observations"}),
}


async def sta(live: Live, path: str, who: str | None = "viewer", **params: Any) -> Any:
    answer = await live.get(STA + path, who, **params)
    assert answer.status_code == 200, (path, answer.text)
    return answer.json()


async def test_service_root_lists_the_sets_and_conformance(opened: Live) -> None:  # noqa: F811
    root = await sta(opened, "")
    assert [(s["name"], s["url"]) for s in root["value"]] == [(s, f"{PUBLIC}/{s}")
                                                              for s in SETS]
    conformance = root["serverSettings"]["conformance"]
    for part in ("datamodel", "resource-path/resource-path-to-entities", "request-data"):
        assert f"http://www.opengis.net/spec/iot_sensing/1.1/req/{part}" in conformance


async def test_every_entity_has_its_mandatory_properties_and_links(opened: Live  # noqa: F811
                                                                  ) -> None:
    for name in SETS:
        page = await sta(opened, f"/{name}", **{"$top": 1000})
        assert page["value"], name
        for entity in page["value"]:
            props, navs = MANDATORY[name]
            assert props <= set(entity), (name, entity)
            here = f"{PUBLIC}/{name}({entity['@iot.id']})"
            assert isinstance(entity["@iot.id"], int) and entity["@iot.selfLink"] == here
            for nav in navs:
                assert entity[f"{nav}@iot.navigationLink"] == f"{here}/{nav}"
        one = page["value"][0]
        again = await sta(opened, f"/{name}({one['@iot.id']})")
        assert again == one, name
        missing = await opened.get(f"{STA}/{name}(999999999)", "viewer")
        assert missing.status_code == 404, name
        assert missing.headers["content-type"] == "application/problem+json"


async def _datastream(live: Live, thing: str, metric: str) -> dict[str, Any]:
    [found] = (await sta(live, "/Datastreams", **{
        "$filter": f"name eq '{metric} of {thing}'"}))["value"]
    return dict(found)


async def test_a_datastream_names_its_unit_and_observed_property(opened: Live  # noqa: F811
                                                                ) -> None:
    ds = await _datastream(opened, "p1.g1.aq1", "pm25")
    assert ds["unitOfMeasurement"] == {
        "name": "microgram per cubic metre", "symbol": "µg/m³",
        "definition": "http://qudt.org/vocab/unit/MicroGM-PER-M3"}
    assert ds["observationType"].endswith("/OM_Measurement")
    prop = await sta(opened, f"/Datastreams({ds['@iot.id']})/ObservedProperty")
    assert prop["name"] == "pm25"
    assert prop["definition"] == "http://dd.eionet.europa.eu/vocabulary/aq/pollutant/6001"
    thing = await sta(opened, f"/Datastreams({ds['@iot.id']})/Thing")
    assert thing["name"] == "p1.g1.aq1" and thing["properties"]["kind"] == "air_quality"
    assert thing["properties"]["uri"] == \
        "http://127.0.0.1:8080/ogc/collections/devices/items/p1.g1.aq1"
    located = await sta(opened, f"/Things({thing['@iot.id']})/Locations")
    assert located["value"][0]["location"] == {"type": "Point", "coordinates": [13.40, 52.52]}


async def test_navigation_four_levels_deep_ref_and_value(opened: Live) -> None:  # noqa: F811
    ds = await _datastream(opened, "p1.g1.aq1", "no2")
    thing = (await sta(opened, f"/Datastreams({ds['@iot.id']})/Thing"))["@iot.id"]
    deep = await sta(opened, f"/Things({thing})/Datastreams({ds['@iot.id']})/Sensor/"
                     "Datastreams")
    assert ds["@iot.id"] in [d["@iot.id"] for d in deep["value"]]
    location = (await sta(opened, f"/Things({thing})/Locations"))["value"][0]["@iot.id"]
    back = await sta(opened, f"/Locations({location})/Things({thing})/Datastreams"
                     f"({ds['@iot.id']})/ObservedProperty")
    assert back["name"] == "no2"
    name = await sta(opened, f"/Things({thing})/name")
    assert name == {"name": "p1.g1.aq1"}
    raw = await opened.get(f"{STA}/Things({thing})/name/$value", "viewer")
    assert raw.status_code == 200 and raw.text == "p1.g1.aq1"
    assert raw.headers["content-type"].startswith("text/plain")
    refs = await sta(opened, f"/Things({thing})/Datastreams/$ref")
    assert {r["@iot.selfLink"] for r in refs["value"]} >= {f"{PUBLIC}/Datastreams({ds['@iot.id']})"}
    assert all(set(r) == {"@iot.selfLink"} for r in refs["value"])
    one_ref = await sta(opened, f"/Datastreams({ds['@iot.id']})/Thing/$ref")
    assert one_ref == {"@iot.selfLink": f"{PUBLIC}/Things({thing})"}
    for bad in (f"/Things({thing})/nothing", "/Lamps", f"/Things({thing})/Datastreams(999999)",
                f"/Things({thing})/name/more"):
        answer = await opened.get(STA + bad, "viewer")
        assert answer.status_code == 404, bad


async def test_observations_carry_the_readings_apis_values(opened: Live) -> None:  # noqa: F811
    ds = await _datastream(opened, "p1.g1.aq1", "no2")
    start, end = "2024-01-14T23:00:00Z", "2024-01-15T23:00:00Z"
    mine = await sta(opened, f"/Datastreams({ds['@iot.id']})/Observations", **{
        "$filter": f"phenomenonTime ge {start} and phenomenonTime lt {end}",
        "$orderby": "phenomenonTime asc", "$count": "true"})
    readings = (await opened.get("/api/v1/readings", "operator", pilot="p1",
                                 kind="air_quality", metric="no2", device="aq1", start=start,
                                 end=end, every=3600)).json()
    expected = [(p["time"].replace("+00:00", "Z"), p["value"])
                for p in readings["series"][0]["points"]]
    assert len(expected) == 24 and mine["@iot.count"] == 24
    assert [(o["phenomenonTime"], o["result"]) for o in mine["value"]] == expected
    newest = await sta(opened, f"/Datastreams({ds['@iot.id']})/Observations", **{"$top": 3})
    times = [o["phenomenonTime"] for o in newest["value"]]
    assert times == sorted(times, reverse=True) and "@iot.nextLink" in newest
    first = newest["value"][0]
    assert await sta(opened, f"/Observations({first['@iot.id']})") == first
    via = await sta(opened, f"/Observations({first['@iot.id']})/Datastream")
    assert via["@iot.id"] == ds["@iot.id"]
    foi = await sta(opened, f"/Observations({first['@iot.id']})/FeatureOfInterest")
    assert foi["feature"] == {"type": "Point", "coordinates": [13.40, 52.52]}
    high = await sta(opened, f"/Datastreams({ds['@iot.id']})/Observations", **{
        "$filter": f"result gt 200 and phenomenonTime lt {end}"})
    assert [o["phenomenonTime"] for o in high["value"]] == [  # the seed's hours 5 and 6
        _utc(T + 6 * H), _utc(T + 5 * H)]
    assert all(o["result"] == 250.0 for o in high["value"])


async def test_paging_count_orderby_select_expand(opened: Live) -> None:  # noqa: F811
    every = await sta(opened, "/Datastreams", **{"$top": 1000, "$count": "true"})
    total = every["@iot.count"]
    assert total == len(every["value"]) >= 5
    seen: list[int] = []
    page = await sta(opened, "/Datastreams", **{"$top": 2, "$orderby": "name desc"})
    while True:
        seen += [d["@iot.id"] for d in page["value"]]
        if "@iot.nextLink" not in page:
            break
        link = page["@iot.nextLink"]
        assert link.startswith(PUBLIC)
        page = (await opened.client.get(link.removeprefix("http://127.0.0.1:8080"),
                                        headers=opened.auth("viewer"))).json()
    names = {d["@iot.id"]: d["name"] for d in every["value"]}
    assert len(seen) == total and [names[i] for i in seen] == sorted(names.values(),
                                                                   reverse=True)
    chosen = await sta(opened, "/Things", **{"$select": "name,id", "$top": 2})
    assert all(set(t) == {"@iot.id", "name"} for t in chosen["value"])
    expanded = await sta(opened, "/Things", **{"$expand": "Datastreams($select=name;$top=1)",
                                               "$filter": "name eq 'p1.g1.aq1'"})
    [thing] = expanded["value"]
    assert [set(d) for d in thing["Datastreams"]] == [{"name"}]
    assert "Datastreams@iot.nextLink" in thing
    for bad in ({"$filter": "substringof('a', name)"}, {"$expand": "Datastreams/Observations"},
                {"$top": "10001"}, {"$orderby": "name sideways"}, {"$apply": "x"},
                {"$filter": "name eq"}):
        answer = await opened.get(STA + "/Things", "viewer", **bad)
        assert answer.status_code == 400, bad
        assert answer.headers["content-type"] == "application/problem+json"
    obs = await opened.get(STA + "/Observations", "viewer", **{"$orderby": "result"})
    assert obs.status_code == 400 and "phenomenonTime" in obs.json()["detail"]
