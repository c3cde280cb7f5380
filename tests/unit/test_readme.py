"""The README's configuration table is the settings' own (one place for each fact)."""

from __future__ import annotations

import re
from pathlib import Path

from api.kpis.definitions import limits_table
from citypilot.settings import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def _generated_block(marker: str) -> str:
    """The README's text between `<!-- marker: ... -->` and `<!-- /marker -->`."""
    block = re.search(rf"<!-- {marker}:.*?-->\n(.*?)\n<!-- /{marker} -->", README.read_text(),
                      re.S)
    assert block, f"README lost its {marker} markers"
    return block.group(1)


def test_configuration_table_matches_settings() -> None:
    assert _generated_block("settings-table") == markdown_table(), (
        "README configuration table is stale; regenerate with: .venv/bin/python -c "
        "'from citypilot.settings import markdown_table; print(markdown_table())'")


def test_quickstart_has_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text()


def test_connect_your_gateways_example_is_a_valid_configuration() -> None:
    import tomllib

    from ingest.decode.sources import decoder_for, load_sources

    section = README.read_text().split("## Connect your gateways", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "the section lost its TOML example"
    sources = load_sources(tomllib.loads(block.group(1))["sources"])
    assert {s.format.value for s in sources} == {
        "ttn-v3", "chirpstack-v4", "zigbee2mqtt", "tasmota", "influx-lp", "sparkplug-b"}
    for source in sources:
        decoder_for(source)


def test_limits_table_matches_the_kpi_catalogue() -> None:
    assert _generated_block("limits-table") == limits_table(), (
        "README limits table is stale; regenerate with: .venv/bin/python -c "
        "'from api.kpis.definitions import limits_table; print(limits_table())'")


def test_registry_example_is_a_valid_registry() -> None:
    from api.catalog import parse_registry

    section = README.read_text().split("### The pilot registry", 1)[1]
    block = re.search(r"```toml\n(.*?)```", section, re.S)
    assert block, "the section lost its TOML example"
    [pilot] = parse_registry(block.group(1), ".toml").pilots
    assert pilot.devices[0].installed is not None
