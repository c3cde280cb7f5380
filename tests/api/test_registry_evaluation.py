"""The registry's evaluation entries (targets, baselines, uptake, activities, language):
read from TOML and YAML, kept by the catalogue, edited over the admin API, refused when wrong."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from api.catalog import Catalog, Direction, Helix, RegistryError, parse_registry
from tests.api.conftest import Live

TOML = """
[[pilots]]
id = "aveiro"
language = "pt"
operator = "Câmara Municipal de Aveiro"

[pilots.targets]
availability = { value = 95, direction = "at_least" }
pm25_mean = { value = 10, direction = "at_most" }

[pilots.baselines.pm25_mean]
value = 14.2
source = "official station PT04012, annual report 2024"
date = 2024-12-31

[[pilots.uptake]]
organisation = "Município de Ílhavo"
solution = "smart parking"
date = 2026-03-02
document = "council decision 2026/114"

[[pilots.activities]]
type = "workshop"
actor = "citizens"
date = 2026-02-10
participants = 42
title = "Parking in the old town"
"""

YAML = """
pilots:
  - id: tartu
    targets: {usage_events: {value: 1000, direction: at_least}}
    baselines:
      usage_events: {value: 800, source: "ticket machines 2025", date: 2025-06-30}
    activities:
      - {type: policy_dialogue, actor: public_authority, date: 2026-01-20, participants: 9}
"""


def test_evaluation_entries_from_toml_and_yaml_survive_the_catalogue(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.db'}")
    catalog.load(parse_registry(TOML, ".toml"))
    catalog.load(parse_registry(YAML, ".yaml"))
    aveiro, tartu = catalog.pilots()  # read back from the table
    assert aveiro.language == "pt" and aveiro.operator == "Câmara Municipal de Aveiro"
    assert aveiro.targets["availability"].direction is Direction.AT_LEAST
    assert aveiro.targets["pm25_mean"].value == 10.0
    base = aveiro.baselines["pm25_mean"]
    assert (base.value, base.date) == (14.2, date(2024, 12, 31))
    assert base.source.startswith("official station")
    assert aveiro.uptake[0].organisation == "Município de Ílhavo"
    assert aveiro.activities[0].actor is Helix.CITIZENS
    assert aveiro.activities[0].participants == 42
    assert tartu.baselines["usage_events"].value == 800
    assert tartu.activities[0].type.value == "policy_dialogue" and tartu.language is None
    catalog.close()


@pytest.mark.parametrize(("text", "message"), [
    ("pilots: [{id: a, targets: {availabilty: {value: 1, direction: at_least}}}]",
     "unknown KPI 'availabilty'"),
    ("pilots: [{id: a, targets: {availability: {value: 1, direction: up}}}]",
     "targets.availability.direction"),
    ("pilots: [{id: a, baselines: {availability: {value: 1, date: 2025-01-01}}}]",
     "baselines.availability.source"),
    ("pilots: [{id: a, activities: [{type: party, actor: citizens, date: 2026-01-01, "
     "participants: 3}]}]", "activities.0.type"),
    ("pilots: [{id: a, activities: [{type: training, actor: citizens, date: 2026-01-01, "
     "participants: -3}]}]", "activities.0.participants"),
    ("pilots: [{id: a, uptake: [{organisation: X, solution: Y, date: 2026-01-01}]}]",
     "uptake.0.document"),
    ("pilots: [{id: a, language: de}]", "language 'de'"),
])
def test_bad_evaluation_entries_name_the_entry(text: str, message: str) -> None:
    with pytest.raises(RegistryError, match=message):
        parse_registry(text, ".yaml")


async def test_admin_api_edits_evaluation_entries(live: Live) -> None:
    admin = live.auth("admin")
    body = {"id": "p3", "language": "it",
            "targets": {"availability": {"value": 90, "direction": "at_least"}},
            "baselines": {"availability": {"value": 70.5, "source": "pre-pilot audit",
                                           "date": "2025-06-30"}},
            "uptake": [{"organisation": "Comune di Bari", "solution": "lighting",
                        "date": "2026-04-01", "document": "delibera 12/2026"}],
            "activities": [{"type": "training", "actor": "business",
                            "date": "2026-02-01", "participants": 12}]}
    put = await live.client.put("/api/v1/registry/pilots/p3", headers=admin, json=body)
    assert put.status_code == 200, put.text
    got = (await live.client.get("/api/v1/registry/pilots/p3", headers=admin)).json()
    assert got["baselines"]["availability"] == body["baselines"]["availability"]
    assert got["targets"] == body["targets"] and got["uptake"] == body["uptake"]
    assert got["activities"][0]["participants"] == 12 and got["language"] == "it"
    bad = await live.client.put("/api/v1/registry/pilots/p3", headers=admin, json={
        **body, "targets": {"nope": {"value": 1, "direction": "at_most"}}})
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
