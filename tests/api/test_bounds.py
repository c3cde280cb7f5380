"""Every number a client may send has both bounds in the OpenAPI document, and the API
handles the values at them.

An unbounded number is how schemathesis found a 500 on `GET /api/v1/readings`: `every` was
only `> 0`, and `every=5e-324` made the point count infinite. So the document is walked
here: every integer or number in a parameter (query, path) or a request body, however deep
(arrays, objects, maps, `anyOf`), has an inclusive `minimum` and `maximum`; then requests at
the bounds are sent to the live API (over SQLite and InfluxDB) and must not fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from api.app import ApiOptions, create_app
from tests.api.conftest import Live

SKIPPED_KEYS = {"default", "examples", "example", "enum", "const", "description", "title"}
NAMED_SCHEMAS = {"properties", "patternProperties", "dependentSchemas"}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return create_app(ApiOptions(store_url="sqlite:///:memory:", catalog_url="sqlite://")
                      ).openapi()


def numbers(schema: Any, where: str, components: dict[str, Any],
            seen: frozenset[str] = frozenset()) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, schema) of every integer or number schema inside `schema`."""
    if isinstance(schema, list):
        for i, item in enumerate(schema):
            yield from numbers(item, f"{where}[{i}]", components, seen)
        return
    if not isinstance(schema, dict):
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        name = ref.rsplit("/", 1)[-1]
        if name not in seen:
            yield from numbers(components[name], name, components, seen | {name})
        return
    kinds = schema.get("type")
    if {"integer", "number"} & set(kinds if isinstance(kinds, list) else [kinds]):
        yield where, schema
    for key, value in schema.items():
        if key in NAMED_SCHEMAS:  # {name: schema}
            for name, sub in value.items():
                yield from numbers(sub, f"{where}.{name}", components, seen)
        elif key not in SKIPPED_KEYS:  # a schema or a list of them (items, anyOf, ...)
            yield from numbers(value, f"{where}.{key}", components, seen)


def request_numbers(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    components = document["components"]["schemas"]
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                found += numbers(parameter["schema"],
                                 f"{label} {parameter['in']}.{parameter['name']}", components)
            for media in operation.get("requestBody", {}).get("content", {}).values():
                found += numbers(media["schema"], f"{label} body", components)
    return found


def test_the_walk_finds_the_numbers_it_must(document: dict[str, Any]) -> None:
    """The walk reaches query parameters, nested body models and map values."""
    where = {w for w, _ in request_numbers(document)}
    for expected in ("GET /api/v1/readings query.every", "GET /api/v1/deadletters query.limit",
                     "Device.lat", "Activity.participants", "Target.value"):
        assert any(w.startswith(expected) for w in where), expected


def test_every_number_a_client_sends_has_both_bounds(document: dict[str, Any]) -> None:
    unbounded = sorted({f"{where}: {schema}" for where, schema in request_numbers(document)
                        if "minimum" not in schema or "maximum" not in schema})
    assert not unbounded, "numbers without an inclusive minimum and maximum:\n" + "\n".join(
        unbounded)


WEEK = {"pilot": "p1", "start": "2024-01-15T00:00:00+01:00",
        "end": "2024-01-22T00:00:00+01:00"}


@pytest.mark.parametrize("every", [0.001, 366 * 86400])
async def test_readings_at_the_bounds_of_every(live: Live, every: float) -> None:
    params = {**WEEK, "kind": "air_quality", "metric": "no2", "every": every}
    got = await live.get("/api/v1/readings", "operator", **params)
    if every < 1:  # a week in 1 ms buckets is more points than an answer may hold
        assert got.status_code == 422, got.text
        assert got.json()["errors"][0]["field"] == "query.every"
        assert "use every >=" in got.json()["detail"]
    else:
        assert got.status_code == 200, got.text
        assert got.json()["every_s"] == every
    below = await live.get("/api/v1/readings", "operator", **{**params, "every": 0.0009})
    assert below.status_code == 422 and below.json()["errors"][0]["field"] == "query.every"


async def test_a_short_period_in_millisecond_buckets(live: Live) -> None:
    params = {"pilot": "p1", "kind": "air_quality", "metric": "no2", "every": 0.001,
              "start": "2024-01-15T00:00:00Z", "end": "2024-01-15T00:00:00.2Z"}
    got = await live.get("/api/v1/readings", "operator", **params)
    assert got.status_code == 200, got.text
    assert got.json()["every_s"] == 0.001


BOUNDS = {  # each registry number at its lowest and highest, and one beyond
    "population": (0, 100_000_000), "lighting_baseline_kwh_per_day": (0.001, 1e12),
}


@pytest.mark.parametrize("field", sorted(BOUNDS))
async def test_registry_numbers_at_their_bounds(live: Live, field: str) -> None:
    low, high = BOUNDS[field]
    for value in (low, high):
        put = await live.client.put("/api/v1/registry/pilots/p9", headers=live.auth("admin"),
                                    json={"id": "p9", field: value})
        assert put.status_code == 200, put.text
        assert put.json()[field] == value
        pilots = await live.get("/api/v1/pilots", "viewer")
        assert pilots.status_code == 200
    beyond = await live.client.put("/api/v1/registry/pilots/p9", headers=live.auth("admin"),
                                   json={"id": "p9", field: high * 10})
    assert beyond.status_code == 422
    assert beyond.json()["errors"][0]["field"] == f"body.{field}"


@pytest.mark.parametrize(("body", "field"), [
    ({"id": "p9", "open": {"open_data": 0}}, "body.open.open_data"),
    ({"id": "p9", "population": "5"}, "body.population"),
    ({"id": "p9", "population": 5.5}, "body.population"),
    ({"id": "p9", "lighting_baseline_kwh_per_day": True}, "body.lighting_baseline_kwh_per_day"),
    ({"id": "p9", "uptake": [{"organisation": "o", "solution": "s", "document": "d",
                              "date": 0}]}, "body.uptake.0.date"),
])
async def test_json_types_are_not_coerced(live: Live, body: dict[str, Any], field: str
                                          ) -> None:
    """What the document says is a boolean, an integer or a date string is one: pydantic's lax
    mode would store `0` as false and an epoch number as a date."""
    put = await live.client.put("/api/v1/registry/pilots/p9", headers=live.auth("admin"),
                                json=body)
    assert put.status_code == 422, put.text
    assert put.json()["errors"][0]["field"] == field


async def test_a_key_expiry_is_a_string(live: Live) -> None:
    made = await live.client.post("/api/v1/keys", headers=live.auth("admin"),
                                  json={"name": "n", "role": "viewer", "expires": 0})
    assert made.status_code == 422
    assert made.json()["errors"][0]["field"] == "body.expires"
