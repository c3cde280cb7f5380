"""Settings: environment over file over defaults; a bad value is one line naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from citypilot.settings import SettingsError, load


def test_environment_wins_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('store_url = "influxdb://db:8086/city"\nmetrics_port = 9200\n')
    monkeypatch.setenv("CITYPILOT_METRICS_PORT", "9300")
    s = load(conf)
    assert s.store_url == "influxdb://db:8086/city"
    assert s.metrics_port == 9300


def test_config_named_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('mqtt_client_id = "collector-b"\n')
    monkeypatch.setenv("CITYPILOT_CONFIG", str(conf))
    assert load().mqtt_client_id == "collector-b"


@pytest.mark.parametrize(("env", "value", "expected"), [
    ("CITYPILOT_STORE_URL", "postgres://x", "CITYPILOT_STORE_URL: must be"),
    ("CITYPILOT_MQTT_URL", "http://broker", "CITYPILOT_MQTT_URL: must start"),
    ("CITYPILOT_METRICS_PORT", "70000", "CITYPILOT_METRICS_PORT: Input should be less"),
])
def test_bad_value_names_the_key(monkeypatch: pytest.MonkeyPatch, env: str, value: str,
                                 expected: str) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(SettingsError) as err:
        load()
    assert str(err.value).startswith(expected)
    assert "\n" not in str(err.value)


def test_unknown_key_in_file(tmp_path: Path) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text('stor_url = "sqlite:///x.db"\n')
    with pytest.raises(SettingsError, match=r"stor_url in .*c.toml: unknown setting"):
        load(conf)


def test_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {"CITYPILOT_MQTT_URL": "tcp://x", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "citypilot", "collect"], env=env,
                          capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "citypilot: configuration error: CITYPILOT_MQTT_URL: must start with "
        "mqtt:// or mqtts:// (got 'tcp://x')"]


def test_the_open_data_settings_reach_the_api(monkeypatch: pytest.MonkeyPatch) -> None:
    from citypilot.cli import _api_options
    monkeypatch.setenv("CITYPILOT_PUBLISHER", "Comune di Prova, ufficio dati")
    monkeypatch.setenv("CITYPILOT_PUBLIC_URL", "https://dati.prova.example")
    api = _api_options(None).api
    assert (api.publisher, api.public_url) == ("Comune di Prova, ufficio dati",
                                               "https://dati.prova.example")
    monkeypatch.setenv("CITYPILOT_PUBLISHER", "")
    with pytest.raises(SettingsError, match=r"^CITYPILOT_PUBLISHER: String should have at least"):
        load()
