"""docker-compose.yml, the Dockerfile and .env.example, checked statically (no Docker engine
runs in CI): the Compose Specification's schema, every mounted host path exists, every
citypilot command and option exists, every CITYPILOT_* variable is a setting, no shipped
secret is accepted, health checks back every `service_healthy` condition."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from packaging.requirements import Requirement

from citypilot.settings import ENV_PREFIX, Settings, SettingsError, load, refuse_shipped_secrets
from tests.deploy.conftest import Broker
from tests.deploy.pins import canonical
from tests.servers import find_binary, free_port

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "tests" / "data" / "schemas"
COMPOSE = ROOT / "docker-compose.yml"
# Commands other issues add to the CLI; strict xfail, so the mark goes once they are wired.
NOT_YET_WIRED: dict[str, str] = {}
NOT_YET_WRITTEN: dict[str, str] = {}
# Empty in .env.example and not required by compose: a gateway password that
# `citypilot gateway add` makes (random); an empty one matches no password-file entry.
GENERATED = {"SIM_GATEWAY_PASSWORD"}


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # type: ignore[no-any-return]


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]  # type: ignore[no-any-return]


def citypilot_services() -> list[str]:
    return [name for name, svc in services().items() if "build" in svc]


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_compose_file_follows_the_compose_specification() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    jsonschema.validate(compose(), schema, cls=jsonschema.Draft7Validator)


def _host_paths() -> list[str]:
    found = set()
    for svc in services().values():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0] if isinstance(volume, str) else volume["source"]
            if source.startswith((".", "/")):
                found.add(source)
    return sorted(found)


@pytest.mark.parametrize("source", [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=NOT_YET_WRITTEN[p]))
    if p in NOT_YET_WRITTEN else p for p in _host_paths()])
def test_every_mounted_host_path_exists_in_the_repo(source: str) -> None:
    assert not source.startswith("/"), f"{source}: mount repo paths, not host paths"
    tracked = subprocess.run(["git", "ls-files", "--", source], cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout
    assert tracked, f"{source} is mounted but not in the repository (a fresh clone)"


def _help(args: list[str]) -> str:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "citypilot", *args, "--help"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, f"`citypilot {' '.join(args)}` is no command: {done.stderr}"
    return done.stdout


@pytest.mark.parametrize("service", [
    pytest.param(s, marks=pytest.mark.xfail(strict=True, reason=NOT_YET_WIRED[s]))
    if s in NOT_YET_WIRED else s for s in citypilot_services()])
def test_every_command_is_a_citypilot_command_with_those_options(service: str) -> None:
    command = services()[service]["command"]
    words = [w for w in command if not w.startswith("-")]
    text = _help(words[:1])
    for option in (w for w in command if w.startswith("--")):
        assert option in text, f"{service}: `citypilot {words[0]}` has no {option}"


def _settings_keys() -> set[str]:
    return {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields} | {
        f"{ENV_PREFIX}CONFIG"}


def test_every_citypilot_variable_is_a_setting() -> None:
    named = set(re.findall(r"\bCITYPILOT_[A-Z0-9_]+", COMPOSE.read_text()))
    named |= {k for k in env_example() if k.startswith(ENV_PREFIX)}
    dockerfile = (ROOT / "Dockerfile").read_text()
    named |= set(re.findall(r"\bCITYPILOT_[A-Z0-9_]+", dockerfile))
    assert named, "no CITYPILOT_* variable found: the check checks nothing"
    assert named - _settings_keys() == set()


def test_every_interpolated_variable_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    assert used - set(env_example()) == set()


@pytest.mark.parametrize("key", [k for k, v in env_example().items() if "PASSWORD" in k])
def test_no_shipped_secret_works(key: str) -> None:
    value = env_example()[key]
    if key in GENERATED:
        assert value == ""
        return
    if value == "":
        assert re.search(rf"\$\{{{key}:\?", COMPOSE.read_text()), (
            f"{key} is empty in .env.example, so compose must require it (${{{key}:?...}})")
        return
    s = load(None, store_url=f"influxdb://citypilot:{value}@influxdb:8086/citypilot")
    with pytest.raises(SettingsError, match="shipped default"):
        refuse_shipped_secrets(s)


def test_demo_free_settings_pass_the_secret_check() -> None:
    refuse_shipped_secrets(load(None, mqtt_url="mqtts://c:Xq9-unique-2f@broker:8883"))


def test_service_healthy_conditions_have_health_checks() -> None:
    for name, svc in services().items():
        for target, cond in (svc.get("depends_on") or {}).items():
            assert target in services(), f"{name} depends on unknown {target}"
            if cond["condition"] == "service_healthy":
                check = services()[target].get("healthcheck", {})
                has_own = "test" in check and not check.get("disable")
                assert has_own or "build" in services()[target], f"{target}: no healthcheck"


def test_collectors_share_a_group_with_their_own_identity_and_spool() -> None:
    collectors = {n: s for n, s in services().items() if s.get("command") == ["collect"]}
    assert len(collectors) == 2
    envs = [s["environment"] for s in collectors.values()]
    assert len({e["CITYPILOT_MQTT_SHARE_GROUP"] for e in envs}) == 1
    assert len({e["CITYPILOT_MQTT_CLIENT_ID"] for e in envs}) == 2
    spools = [v for s in collectors.values() for v in s["volumes"]
              if v.endswith(":/var/lib/citypilot/spool")]
    assert len(set(spools)) == 2
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]}
    port = envs[0]["CITYPILOT_METRICS_PORT"]
    assert {f"{n}:{port}" for n in collectors} <= targets


def test_dockerfile_is_slim_non_root_pinned_and_healthchecked() -> None:
    text = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.search(r":3\.11-slim-\w+$", b) for b in bases)
    assert re.search(r"^USER (?!root|0)\S+", text, re.M) and "HEALTHCHECK" in text
    for source in re.findall(r"^COPY (?!--from)(\S+)", text, re.M):
        assert (ROOT / source).exists(), f"Dockerfile copies missing {source}"
    pins = {canonical(n): v for n, v in re.findall(
        r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / "deploy/docker/requirements.txt").read_text(),
        re.M)}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for text_req in project["dependencies"]:
        req = Requirement(text_req)
        assert canonical(req.name) in pins, (
            f"{req.name} is not pinned: regenerate deploy/docker/requirements.txt with "
            "`.venv/bin/python -m tests.deploy.pins > deploy/docker/requirements.txt`")
        assert req.specifier.contains(pins[canonical(req.name)], prereleases=True)


def listeners() -> dict[int, list[str]]:
    """The shipped broker's listeners: port -> their settings lines."""
    found: dict[int, list[str]] = {}
    current: list[str] | None = None
    for line in (ROOT / "deploy/mosquitto/mosquitto.conf").read_text().splitlines():
        if line.startswith("listener "):
            current = found.setdefault(int(line.split()[1]), [])
        elif current is not None and line.strip() and not line.startswith("#"):
            current.append(line)
    return found


def test_gateways_and_collectors_use_their_own_listeners() -> None:
    """Gateways on the published port, whose client ids are their usernames; the collectors
    and the API on a listener with the collectors' password file."""
    conf = listeners()
    gateway_ports = {p for p, lines in conf.items() if "use_username_as_clientid true" in lines}
    collector_ports = {p for p, lines in conf.items()
                       if "password_file /mosquitto/auth/collectors.passwd" in lines}
    assert gateway_ports == {8883} and collector_ports == {8884, 1883}
    assert services()["mosquitto"]["ports"] == ["8883:8883"]
    for name in citypilot_services():
        env = services()[name].get("environment", {})
        url = env.get("CITYPILOT_MQTT_URL")
        if url is not None:
            assert url.startswith("mqtts://citypilot-collector:") and url.endswith(
                "@mosquitto:8884"), name
    upstream = services()["simulator"]["command"]
    assert upstream[upstream.index("--upstream") + 1].endswith("@mosquitto:8883")


def test_mosquitto_healthcheck_passes_on_the_shipped_broker_and_fails_without_it(
        broker: Broker) -> None:
    kind, script = services()["mosquitto"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    script = script.replace("$$", "$").replace("-p 1883", f"-p {broker.server.port}")
    sub = Path(find_binary("mosquitto_sub", "mosquitto-clients"))
    env = {**os.environ, "PATH": f"{sub.parent}:{os.environ.get('PATH', '')}"}
    assert subprocess.run(["sh", "-c", script], env=env, timeout=30).returncode == 0
    dead = script.replace(f"-p {broker.server.port}", f"-p {free_port()}")
    assert subprocess.run(["sh", "-c", dead], env=env, timeout=30,
                          capture_output=True).returncode != 0


def test_the_simulated_gateway_is_checked_on_the_port_its_agent_serves() -> None:
    sim = services()["simulator"]
    assert sim["command"][0] == "gateway"
    port = sim["environment"]["CITYPILOT_GATEWAY_METRICS_PORT"]
    probe = " ".join(sim["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/readyz" in probe
