"""The unit registry's names for open standards (SensorThings, the inventory schema)."""

from __future__ import annotations

from ingest.units import DEFINITIONS, REGISTRY


def test_every_registry_unit_has_an_open_definition() -> None:
    assert {m.unit for m in REGISTRY.values()} <= set(DEFINITIONS)
    for unit, definition in DEFINITIONS.items():
        assert definition.uri.startswith("http://qudt.org/vocab/unit/"), unit
        assert definition.ucum and " " not in definition.ucum, unit
