"""Settings: `CITYPILOT_*` environment variables over an optional TOML file over defaults.

The only place that reads the environment. The file is named by `--config` or
`CITYPILOT_CONFIG` and uses the same keys in lower case (`store_url = "..."`); it also holds
what an environment variable cannot (`[[sources]]`). A bad value becomes one line naming the
key and the fix (`SettingsError`, exit code 2). Defaults point at the embedded demo.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from ingest.model import first_problem

ENV_PREFIX = "CITYPILOT_"
DATA_DIR = Path("./citypilot-data")


class SettingsError(Exception):
    """A one-line, user-fixable configuration error."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid",
                                      validate_default=True)

    mqtt_url: str = Field("mqtt://127.0.0.1:1883", description="broker URL, "
                          "mqtt://user:pass@host:1883 or mqtts://... (TLS)")
    mqtt_client_id: str = Field("citypilot-collector", description="the collector's "
                                "persistent-session identity; unique per collector")
    mqtt_share_group: str | None = Field(None, description="join this shared-subscription "
                                         "group ($share/<group>/...) to split the load")
    mqtt_session_expiry_s: float = Field(86400.0, gt=0, description="how long the broker "
                                         "keeps a disconnected collector's session and queue")
    mqtt_ca_file: Path | None = Field(None, description="CA bundle to verify an mqtts:// "
                                      "broker (system CAs when unset)")
    mqtt_tls_insecure: bool = Field(False, description="turn TLS certificate verification "
                                    "off (loudly logged; tests only)")
    store_url: str = Field("sqlite:///./citypilot-data/citypilot.db", description="sqlite:///path "
                           "or influxdb://user:pass@host:8086/db (influxdbs:// for TLS)")
    store_timeout_s: float = Field(5.0, gt=0, description="how long a store write may retry "
                                   "before its batch goes to the spool")
    spool_dir: Path = Field(DATA_DIR / "spool", description="the on-disk spool; one per "
                            "collector")
    spool_max_bytes: int = Field(1 << 30, gt=0, description="spool bound; the oldest "
                                 "records are dropped (and counted) beyond it")
    metrics_port: int = Field(9108, ge=0, le=65535, description="Prometheus /metrics, "
                              "/healthz, /readyz port; 0: off")
    catalog_url: str = Field("sqlite:///./citypilot-data/catalog.db", description="pilot "
                             "registry and hashed API keys")
    # The HTTP API and the KPIs (`citypilot api`, `kpi`).
    api_host: str = Field("127.0.0.1", description="address `citypilot api` binds")
    api_port: int = Field(8080, ge=1, le=65535, description="port `citypilot api` binds")
    api_max_points: int = Field(10_000, ge=100, le=1_000_000, description="most points in "
                                "one /api/v1/readings answer (downsampled or refused beyond)")
    default_interval_s: float = Field(300.0, gt=0, description="expected reporting interval "
                                      "of devices the registry does not describe (KPIs, "
                                      "online status)")
    public_url: str = Field("http://127.0.0.1:8080", description="the base of every absolute "
                            "link and persistent id the open interfaces write (/ogc, "
                            "/open, /catalog)")
    publisher: str = Field("citypilot", min_length=1, max_length=200, description="who "
                           "publishes the open data (the catalogue's dct:publisher, e.g. the "
                           "city's data office); a pilot's datasets name its operator")
    open_rate_limit: str = Field("120/minute", description="requests per client address "
                                 "to the open interfaces (429 beyond), e.g. 10/second")
    auth_failure_limit: str = Field("10/minute", description="unknown API keys per client "
                                    "address; beyond, every keyed request from it is a 429 "
                                    "until the window has passed")
    mosquitto_password_file: Path = Field(Path("deploy/mosquitto/auth/passwd"),
                                          description="Mosquitto password file of the "
                                          "gateways, that `citypilot gateway add/revoke` edit")
    mosquitto_collector_password_file: Path = Field(
        Path("deploy/mosquitto/auth/collectors.passwd"), description="Mosquitto password "
        "file of the collectors' account, that `citypilot gateway collector` edits")
    mosquitto_acl_file: Path = Field(Path("deploy/mosquitto/auth/acl"), description="Mosquitto "
                                     "ACL file that `citypilot gateway add/revoke` edit")
    gateway_listen_host: str = Field("127.0.0.1", description="address the gateway agent's "
                                     "site listener (`--listen`) binds; 0.0.0.0 for the site "
                                     "network (then set a password file)")
    gateway_metrics_port: int = Field(0, ge=0, le=65535, description="the gateway agent's "
                                      "/metrics, /healthz, /readyz port (every interface); "
                                      "0: off")
    gateway_listen_password_file: Path | None = Field(
        None, description="password file of the site listener's clients, in Mosquitto's "
        "format (`mosquitto_passwd -c FILE USER`), re-read at each login; unset: anonymous")
    batch_max_messages: int = Field(2000, ge=1, le=65535, description="messages per store "
                                    "write (also sizes the MQTT 5 Receive Maximum)")
    batch_max_bytes: int = Field(1 << 20, ge=1024, description="payload bytes per store "
                                 "write: bounds a batch's readings when gateways send arrays")
    batch_interval_s: float = Field(0.02, gt=0, description="longest wait to fill a batch")
    max_payload_bytes: int = Field(256 * 1024, ge=64, description="larger messages are "
                                   "dead-lettered as too_large")
    max_future_s: float = Field(300.0, ge=0, description="a ts further ahead than this is "
                                "rejected")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO",
                                                                    description="log level")
    log_format: Literal["text", "json"] = Field("text", description="log line format")
    sources: list[dict[str, Any]] = Field(default_factory=list, description="[[sources]] of "
                                          "other gateway formats (config file only)")

    @field_validator("mqtt_url")
    @classmethod
    def _mqtt_scheme(cls, v: str) -> str:
        if not v.startswith(("mqtt://", "mqtts://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return v

    @field_validator("public_url")
    @classmethod
    def _public(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
            raise ValueError("must be an http(s):// base URL, e.g. https://data.city.example")
        return v.rstrip("/")

    @field_validator("open_rate_limit", "auth_failure_limit")
    @classmethod
    def _rate(cls, v: str) -> str:
        from limits import parse_many

        try:
            parse_many(v)
        except ValueError:
            raise ValueError("must read like 120/minute or 10/second") from None
        return v

    @field_validator("store_url", "catalog_url")
    @classmethod
    def _store_scheme(cls, v: str) -> str:
        if not v.startswith(("sqlite:///", "influxdb://", "influxdbs://")):
            raise ValueError("must be sqlite:///path or influxdb://host:8086/db")
        return v


def load(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from overrides > environment > TOML file > defaults, or SettingsError."""
    path = config_file or (Path(os.environ[f"{ENV_PREFIX}CONFIG"])
                           if os.environ.get(f"{ENV_PREFIX}CONFIG") else None)
    file_values: dict[str, Any] = {}
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text())
        except OSError as exc:
            raise SettingsError(f"config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {path}: not valid TOML ({exc})") from None

    class _FromFile(PydanticBaseSettingsSource):
        def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
            return file_values.get(field_name), field_name, False

        def __call__(self) -> dict[str, Any]:
            return dict(file_values)

    class _Settings(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _FromFile(settings_cls)

    try:
        return _Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_one_line(exc, path)) from None


def _one_line(exc: ValidationError, path: Path | None) -> str:
    """Named as the user set it: the variable, or the key in the file."""
    problem = first_problem(exc, show_input=True)
    key = problem.loc[0] if problem.loc else "?"
    if problem.kind == "extra_forbidden":
        where = f"{key} in {path}" if path else key
        return f"{where}: unknown setting (see `citypilot --help` and README's configuration)"
    where = f"{ENV_PREFIX}{key.upper()}" + (f" (or {key} in {path})" if path else "")
    return f"{where}: {problem.text()}"


# Secrets that ship with citypilot: the placeholders of .env.example (tests/deploy/ keep this
# set and that file in step) and the example passwords of the README. Outside the demo they
# are refused, so a copied example never guards a real broker or database.
SHIPPED_SECRETS = frozenset({
    "change-me-collector", "change-me-influxdb-admin", "change-me-influxdb",
    "change-me-grafana-reader", "secret", "password", "changeme",
})


def _shipped(password: str) -> bool:
    return password in SHIPPED_SECRETS or password.lower().startswith("change-me")


def shipped_secrets(settings: Settings) -> list[str]:
    """Where a URL of the settings carries a shipped default password (any `change-me...`
    placeholder included), named as the user set it."""
    urls = [(f"{ENV_PREFIX}{key.upper()}", getattr(settings, key))
            for key in ("mqtt_url", "store_url", "catalog_url")]
    urls += [(f"[[sources]] {src.get('name', '?')} mqtt_url", src["mqtt_url"])
             for src in settings.sources if isinstance(src.get("mqtt_url"), str)]
    return [where for where, url in urls
            if (password := urlsplit(url).password) is not None and _shipped(unquote(password))]


def shipped_broker_passwords(password_file: Path) -> list[str]:
    """The accounts of a Mosquitto password file whose password is a shipped one (what a
    copied example leaves behind; `citypilot doctor` reports them)."""
    from ingest.gateway.credentials import read_passwords, verify_hash

    try:
        entries = read_passwords(password_file)
    except OSError:
        return []
    return [f"the broker account {user!r} ({password_file})" for user, hashed in entries
            if any(verify_hash(secret, hashed) for secret in SHIPPED_SECRETS)]


def refuse_shipped_secrets(settings: Settings) -> None:
    """Raise SettingsError when a URL carries a shipped default password. Every command but
    the demo's (and `doctor`, which reports it) calls it after loading settings."""
    for where in shipped_secrets(settings):
        raise SettingsError(f"{where}: its password is a shipped default; set your own "
                            "(in .env for docker compose) — defaults only work in the demo")


def markdown_table() -> str:
    """The README's configuration table, generated from the fields (a test keeps it true)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, f in Settings.model_fields.items():
        if name == "sources":
            default = "(config file only: `[[sources]]`)"
        else:
            value = f.get_default(call_default_factory=True)
            default = "unset" if value is None else f"`{value}`"
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {default} | {f.description} |")
    rows.append(f"| `{ENV_PREFIX}CONFIG` | unset | the TOML file with these keys (or `--config`) |")
    return "\n".join(rows)
