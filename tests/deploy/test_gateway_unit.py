"""deploy/gateway/: the systemd unit passes `systemd-analyze verify` (where systemd is
installed; the static checks below run everywhere), restarts always, runs as its own user with
its spool under /var/lib/citypilot, and takes its settings from the EnvironmentFile example;
logrotate rotates the file the unit writes."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from citypilot.settings import ENV_PREFIX, Settings

GATEWAY = Path(__file__).resolve().parents[2] / "deploy" / "gateway"
UNIT = GATEWAY / "citypilot-gateway.service"
BINARY = "/opt/citypilot/bin/citypilot"


def unit() -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=True, delimiters=("=",),
                                          comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    return parser


def env_example() -> dict[str, str]:
    lines = (GATEWAY / "gateway.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze not installed; the static checks below still run")
def test_systemd_analyze_verify_is_silent(tmp_path: Path) -> None:
    # verify insists that ExecStart's binary exists: point it at a stand-in, nothing else.
    fake = tmp_path / "citypilot"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(BINARY, str(fake)))
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_unit_restarts_always_as_its_own_user_with_spool_under_var_lib() -> None:
    u = unit()
    assert u.sections() == ["Unit", "Service", "Install"]
    service = u["Service"]
    assert service["Restart"] == "always"
    assert service["User"] == service["Group"] == "citypilot"
    assert service["StateDirectory"] == "citypilot" and service["LogsDirectory"] == "citypilot"
    assert service["EnvironmentFile"] == "/etc/citypilot/gateway.env"
    exec_start = service["ExecStart"].split()
    assert exec_start[:2] == [BINARY, "gateway"]
    spool = exec_start[exec_start.index("--spool-dir") + 1]
    assert spool.startswith("/var/lib/citypilot/")
    assert u["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in u["Unit"]["After"]


def test_exec_start_variables_come_from_the_environment_file() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", unit()["Service"]["ExecStart"]))
    env = env_example()
    assert used and used <= set(env)
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= {
        f"{ENV_PREFIX}{n.upper()}" for n in Settings.model_fields}
    pilot, gateway = env["GATEWAY_PILOT"], env["GATEWAY_ID"]
    assert f"//{pilot}.{gateway}:change-me" in env["GATEWAY_UPSTREAM"]  # gateway add's user


def test_logrotate_rotates_the_file_the_unit_writes() -> None:
    target = unit()["Service"]["StandardError"].removeprefix("append:")
    text = (GATEWAY / "citypilot-gateway.logrotate").read_text()
    assert re.search(rf"^{re.escape(target)} \{{", text, re.M)
    assert "copytruncate" in text  # systemd keeps the file open for the service
