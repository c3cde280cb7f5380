"""The README's configuration table is the settings' own (one place for each fact)."""

from __future__ import annotations

import re
from pathlib import Path

from citypilot.settings import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_configuration_table_matches_settings() -> None:
    text = README.read_text()
    block = re.search(r"<!-- settings-table:.*?-->\n(.*?)\n<!-- /settings-table -->", text, re.S)
    assert block, "README lost its settings-table markers"
    assert block.group(1) == markdown_table(), (
        "README configuration table is stale; regenerate with: .venv/bin/python -c "
        "'from citypilot.settings import markdown_table; print(markdown_table())'")


def test_quickstart_has_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text
    assert "make test" in (README.parent / ".ci" / "run").read_text()
