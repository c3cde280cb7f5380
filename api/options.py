"""The API's options: what `citypilot api` (the composition root) hands to `create_app`.

Kept free of FastAPI and the stores, so that `citypilot --help` and the other commands can
build options without loading the web stack.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class KpiOptions:
    default_interval_s: float = 300.0  # devices without a registered reporting interval
    max_days: float = 400.0  # longest period one request may ask for
    max_buckets: int = 400


@dataclass(frozen=True, slots=True)
class DoctorOptions:
    """What `citypilot doctor` (and `GET /api/v1/doctor`) check beyond the API's own store,
    catalogue and broker; the composition root fills it from the settings."""

    mqtt_ca_file: str | None = None
    mqtt_tls_insecure: bool = False
    probe_url: str | None = None  # the account of the broker probe (default: mqtt_url's)
    probe_messages: int = 2000  # 0: no queue probe
    mosquitto_conf: str | None = None  # the broker's config file, when readable from here
    spool_dir: str | None = None  # the collector's spool (None: not checked)
    spool_max_bytes: int = 1 << 30
    batch_max_bytes: int = 1 << 20
    max_future_s: float = 300.0
    # InfluxDB's limits when SHOW DIAGNOSTICS (admin only) does not tell them: its defaults.
    max_series_per_database: int = 1_000_000
    max_values_per_tag: int = 100_000
    skew_window_s: float = 3600.0  # the ingest delays looked at
    shipped_secrets: tuple[str, ...] = ()  # where a shipped default password is in use
    timeout_s: float = 15.0


@dataclass(frozen=True, slots=True)
class ApiOptions:
    store_url: str
    catalog_url: str
    mqtt_url: str | None = None  # /readyz checks that the broker accepts connections
    # How long one store read may take, retries included (a KPI over a year is heavy).
    store_timeout_s: float = 30.0
    max_points: int = 10_000  # the most points one readings answer holds
    ready_timeout_s: float = 2.0
    kpi: KpiOptions = field(default_factory=KpiOptions)
    # The open interfaces: the base of their links and ids, and requests per client address.
    public_url: str = "http://127.0.0.1:8080"
    publisher: str = "citypilot"  # the catalogue's dct:publisher
    open_rate_limit: str = "120/minute"
    auth_failure_limit: str = "10/minute"  # unknown API keys per client address
    doctor: DoctorOptions = field(default_factory=DoctorOptions)


@dataclass(frozen=True, slots=True)
class CliOptions:
    """What the `api`, `kpi`, `apikey` and `registry` commands need."""

    api: ApiOptions
    host: str = "127.0.0.1"
    port: int = 8080
