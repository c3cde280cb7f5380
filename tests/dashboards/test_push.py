"""`citypilot dashboards push`: what it uploads, and a clean failure when Grafana is not
there (no Grafana runs in the tests)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from typer.testing import CliRunner

from citypilot.cli import app
from dashboards.build import files
from dashboards.cli import payloads
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_each_dashboard_is_one_overwriting_upload_into_the_folder() -> None:
    bodies = payloads(ROOT / "dashboards", "citypilot")
    assert sorted(b["dashboard"]["uid"] for b in bodies) == sorted(
        build()["uid"] for build in files.DASHBOARDS.values())
    for body in bodies:
        assert body["dashboard"]["id"] is None
        assert body["overwrite"] is True and body["folderUid"] == "citypilot"


def test_an_unreachable_grafana_is_one_line_and_exit_1() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["dashboards", "push", "--grafana-url", url, "--token",
                                      "t0ken", "--dir", str(ROOT / "dashboards")])
    if importlib.util.find_spec("grafana_client") is None:  # not in pyproject's deps
        assert result.exit_code == 2
        assert "pip install grafana-client" in result.stderr
        return
    assert result.exit_code == 1
    assert result.stderr.startswith(f"citypilot: Grafana at {url}: ")
    assert "t0ken" not in result.output
