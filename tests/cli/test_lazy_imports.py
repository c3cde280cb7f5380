"""`citypilot gateway` on a Pi loads only what the gateway runs: the root command mounts each
package's `cli.py` on first use, so neither FastAPI nor the simulators nor the dashboards are
imported, nor amqtt, which only the site listener (`--listen`) runs (checked in a fresh
interpreter, where nothing else has imported them)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

NOT_ON_A_GATEWAY = {"fastapi", "starlette", "uvicorn", "api", "simulators", "dashboards",
                    "amqtt"}
PROBE = """
import json, sys
from citypilot.cli import main
sys.argv = ["citypilot", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
print("\\nMODULES " + json.dumps({"code": code,
                                  "top": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _run(args: list[str]) -> tuple[str, int, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], capture_output=True,
                          text=True, check=True, timeout=60)
    text, _, tail = done.stdout.rpartition("\nMODULES ")
    report = json.loads(tail)
    return text, report["code"], set(report["top"])


@pytest.mark.parametrize("args", [["gateway", "--help"], ["gateway", "add", "--help"]])
def test_gateway_help_loads_no_web_stack_simulators_or_dashboards(args: list[str]) -> None:
    text, code, loaded = _run(args)
    assert code == 0
    assert f"Usage: citypilot {' '.join(args[:-1])}" in text
    assert "--pilot" in text
    assert loaded & NOT_ON_A_GATEWAY == set()
    assert {"citypilot", "ingest"} <= loaded


def test_the_root_help_still_lists_every_package_command() -> None:
    text, code, loaded = _run(["--help"])
    assert code == 0
    for name in ("collect", "api", "up", "simulate", "deadletters", "sources", "kpi",
                 "apikey", "registry", "dashboards", "gateway"):
        assert f" {name} " in text, name
    assert {"api", "simulators", "dashboards"} <= loaded  # --help builds them all
