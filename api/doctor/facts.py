"""The facts `citypilot doctor` checks, gathered from the running parts, and `examine`, which
runs every check over them.

- The broker: its `$SYS` tree and the queue probe (`ingest.mqtt.probe`); its config file
  when it is readable from here (`--mosquitto-conf`).
- InfluxDB: `/ping` (the `X-Influxdb-Version` and `Date` headers), `SHOW DIAGNOSTICS` (the
  limits `max-series-per-database` and `max-values-per-tag` of `[data]`; InfluxDB 1.6 shows
  them to admin users only, else the options' values are assumed), `SHOW SERIES CARDINALITY`
  per database (an estimate; InfluxDB 1.6 has it) and `SHOW TAG VALUES EXACT CARDINALITY`
  per tag key citypilot writes.
- Either store: the smallest and largest `ingest_delay_s` per gateway over the last window,
  the future-timestamp dead letters, and the rollup worker's state (`read_state`: the same
  lag as `citypilot_rollup_lag_seconds`).
- This host: the spool's disk, the CA file, the certificates the broker and the store
  present (read with the standard `ssl` module: citypilot has no X.509 dependency).
Nothing here writes to the store, and no database is created.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import shutil
import ssl
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from api.catalog import Catalog, KeyState, Role
from api.doctor import checks
from api.doctor.checks import Certificate, Finding, GatewayDelay, Headroom, Level
from api.kpis.rollups.worker import read_state
from api.options import ApiOptions, DoctorOptions
from ingest.model import DEAD_LETTER_MEASUREMENT, DELAY_FIELD, TAG_KEYS, Reason
from ingest.mqtt import MqttConfigError, MqttOptions, client_tls, parse_broker_url
from ingest.mqtt.probe import look
from ingest.stores import StoreError, open_reader, quote_ident, redact
from ingest.stores.base import Aggregate, Reader, Stat
from ingest.stores.influx.http import parse_url
from ingest.stores.naming import rollup_database, rollup_url


async def examine(api: ApiOptions, catalog: Catalog) -> list[Finding]:
    """Every check, in the order of the README's list."""
    doc = api.doctor
    parts = await asyncio.gather(_broker(api.mqtt_url, doc), _store(api.store_url, doc))
    findings = [f for part in parts for f in part]
    if doc.spool_dir is not None:
        findings.append(await asyncio.to_thread(_spool, Path(doc.spool_dir), doc))
    findings += checks.certificates(await _certificates(api, doc), time.time())
    findings += checks.secrets(doc.shipped_secrets, await asyncio.to_thread(_demo_keys, catalog))
    return findings


# -- the broker ---------------------------------------------------------------------------

async def _broker(mqtt_url: str | None, doc: DoctorOptions) -> list[Finding]:
    if mqtt_url is None:
        return [Finding(id="broker.connect", level=Level.INFO, message="no broker configured")]
    url = doc.probe_url or mqtt_url
    try:
        account = parse_broker_url(url).username or "the probe's account"
    except MqttConfigError as exc:
        return [Finding(id="broker.connect", level=Level.ERROR, message=str(exc),
                        fix="correct CITYPILOT_MQTT_URL (or --probe-url)")]
    options = MqttOptions(url=url, client_id="citypilot-doctor", ca_file=doc.mqtt_ca_file,
                          tls_insecure=doc.mqtt_tls_insecure, connect_timeout_s=doc.timeout_s)
    facts = await asyncio.to_thread(look, options, messages=doc.probe_messages,
                                    timeout_s=doc.timeout_s)
    conf = None
    if doc.mosquitto_conf is not None:
        try:
            conf = checks.parse_mosquitto_conf(
                await asyncio.to_thread(Path(doc.mosquitto_conf).read_text))
        except OSError as exc:
            return [Finding(id="broker.conf", level=Level.ERROR,
                            message=f"cannot read {doc.mosquitto_conf}: {exc.strerror}",
                            fix="name the broker's mosquitto.conf, readable from here")]
    return checks.broker(facts, conf, account)


# -- the store ----------------------------------------------------------------------------

async def _store(store_url: str, doc: DoctorOptions) -> list[Finding]:
    influx = urlsplit(store_url).scheme in ("influxdb", "influxdbs")
    out: list[Finding] = []
    if influx:
        try:
            target = parse_url(store_url)
        except StoreError as exc:
            return [Finding(id="store.connect", level=Level.ERROR, message=str(exc),
                            fix="correct CITYPILOT_STORE_URL")]
        try:
            async with httpx.AsyncClient(auth=target.auth, timeout=doc.timeout_s) as http:
                ping = await http.get(f"{target.base_url}/ping")
        except httpx.HTTPError as exc:
            return [Finding(id="store.connect", level=Level.ERROR,
                            message=f"{redact(store_url)}: {exc or type(exc).__name__}",
                            fix="check CITYPILOT_STORE_URL and that InfluxDB runs")]
        out += [checks.store_version(ping.headers.get("X-Influxdb-Version"), target.where),
                checks.store_clock(_offset(ping.headers.get("Date")), target.where)]
    else:
        path = store_url.removeprefix("sqlite:///")
        if not await asyncio.to_thread(os.path.exists, path):  # a reader would create it
            return [Finding(id="store.connect", level=Level.INFO, message=f"no SQLite store "
                            f"at {path} yet (the collector creates it)")]
        out.append(checks.ok("store.version", "SQLite store: no series limits"))
    options = {"deadline_s": doc.timeout_s, **({"ensure_database": False} if influx else {})}
    try:
        async with open_reader(store_url, **options) as reader:
            if influx:
                out += checks.headroom(await _headroom(reader, target.database, doc))
            delays, future = await _delays(reader, doc.skew_window_s)
        out += checks.gateway_clocks(delays, window_s=doc.skew_window_s, future=future,
                                     max_future_s=doc.max_future_s)
        out.append(checks.rollup_lag(await _rollup_lag(store_url, options)))
    except StoreError as exc:
        out.append(Finding(id="store.connect", level=Level.ERROR,
                           message=f"{redact(store_url)}: {exc}",
                           fix="check CITYPILOT_STORE_URL, its user's rights and the store"))
    return out


def _offset(date: str | None) -> float | None:
    """The server's clock minus this host's, from an HTTP Date header (whole seconds)."""
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


async def _headroom(reader: Reader, database: str, doc: DoctorOptions) -> Headroom:
    run = reader.influxql  # type: ignore[attr-defined]
    max_series, max_values, told = doc.max_series_per_database, doc.max_values_per_tag, False
    try:
        for series in await run("SHOW DIAGNOSTICS"):
            if series.get("name") == "config-data":
                row = dict(zip(series["columns"], series["values"][0], strict=True))
                max_series = int(row["max-series-per-database"])
                max_values = int(row["max-values-per-tag"])
                told = True
    except StoreError:
        pass  # not an admin user: the limits are assumed (the finding says so)
    counts: dict[str, int] = {}
    for db in (database, rollup_database(database)):
        answer = await run(f"SHOW SERIES CARDINALITY ON {quote_ident(db)}")
        if answer and answer[0].get("values"):
            counts[db] = int(answer[0]["values"][0][0])
    widest: tuple[str, str, int] | None = None
    for key in TAG_KEYS:
        q = (f"SHOW TAG VALUES EXACT CARDINALITY ON {quote_ident(database)} WITH KEY = "
             f"{quote_ident(key)}")
        for series in await run(q):
            n = int(series["values"][0][0])
            if widest is None or n > widest[2]:
                widest = (str(series.get("name")), key, n)
    return Headroom(counts, widest, max_series, max_values, told)


async def _delays(reader: Reader, window_s: float) -> tuple[list[GatewayDelay], int]:
    now = time.time_ns()
    window = ((now - round(window_s * 1e9), now),)
    delayed = tuple(sorted(m for m, names in (await reader.fields()).items()
                           if DELAY_FIELD in names))
    out: list[GatewayDelay] = []
    if delayed:
        least, most = [await reader.aggregate(Aggregate(delayed, DELAY_FIELD, stat, window,
                                                        by=("pilot", "gateway")))
                       for stat in (Stat.MIN, Stat.MAX)]
        lows: dict[tuple[str, str], float] = {}
        highs: dict[tuple[str, str], float] = {}
        for rows, into, pick in ((least, lows, min), (most, highs, max)):
            for row in rows:
                key = (row.tag("pilot"), row.tag("gateway"))
                into[key] = pick(into.get(key, row.value), row.value)
        out = [GatewayDelay(p, g, lows[p, g], highs[p, g]) for p, g in sorted(lows)]
    refused = await reader.aggregate(Aggregate(
        (DEAD_LETTER_MEASUREMENT,), "topic", Stat.COUNT, window,
        where=(("reason", (Reason.FUTURE_TIMESTAMP.value,)),)))
    return out, int(sum(r.value for r in refused))


async def _rollup_lag(store_url: str, options: Mapping[str, object]) -> float | None:
    url = rollup_url(store_url)
    if url.startswith("sqlite:///") and not await asyncio.to_thread(
            os.path.exists, url.removeprefix("sqlite:///")):
        return None  # opening it would create it
    async with open_reader(url, **options) as rollups:
        state = await read_state(rollups)
    return None if state is None else state.lag_s(time.time_ns())


# -- this host ----------------------------------------------------------------------------

def _spool(directory: Path, doc: DoctorOptions) -> Finding:
    existing = directory
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    used = sum(p.stat().st_size for p in directory.iterdir() if p.is_file()) \
        if directory.is_dir() else 0
    try:
        free: int | None = shutil.disk_usage(existing).free
    except OSError:
        free = None
    return checks.spool(str(directory), free=free, used=used, bound=doc.spool_max_bytes,
                        writable=os.access(existing, os.W_OK | os.X_OK),
                        batch_bytes=doc.batch_max_bytes)


async def _certificates(api: ApiOptions, doc: DoctorOptions) -> list[Certificate]:
    out = await asyncio.to_thread(_ca_file, doc.mqtt_ca_file) if doc.mqtt_ca_file else []
    try:
        broker = parse_broker_url(api.mqtt_url) if api.mqtt_url is not None else None
    except MqttConfigError:
        broker = None  # `broker.connect` says so
    if broker is not None:
        if broker.tls and not doc.mqtt_tls_insecure:
            context = client_tls(broker, doc.mqtt_ca_file)
            assert context is not None
            out.append(await _peer(broker.host, broker.port, context, doc.timeout_s))
    parts = urlsplit(api.store_url)
    if parts.scheme == "influxdbs" and parts.hostname:
        out.append(await _peer(parts.hostname, parts.port or 8086,
                               ssl.create_default_context(), doc.timeout_s))
    return out


def _ca_file(path: str) -> list[Certificate]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=path)
    except (OSError, ssl.SSLError) as exc:
        return [Certificate(path, "", None, f"cannot read the CA file: {exc}")]
    return [Certificate(path, _subject(c), ssl.cert_time_to_seconds(str(c["notAfter"])))
            for c in context.get_ca_certs()] or [Certificate(path, "", None, "no CA "
                                                             "certificate in the file")]


async def _peer(host: str, port: int, context: ssl.SSLContext, timeout_s: float
                ) -> Certificate:
    where = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port, ssl=context)
    except ssl.SSLCertVerificationError as exc:
        return Certificate(where, "", None, f"its certificate is refused: {exc.verify_message}")
    except (OSError, TimeoutError) as exc:
        return Certificate(where, "", None, f"no TLS handshake: {exc or 'timed out'}")
    try:
        cert = writer.get_extra_info("peercert") or {}
    finally:
        writer.close()
        await writer.wait_closed()
    not_after = cert.get("notAfter")
    return Certificate(where, _subject(cert), None if not_after is None
                       else ssl.cert_time_to_seconds(str(not_after)), "no certificate read")


def _subject(cert: Mapping[str, object]) -> str:
    for rdn in cert.get("subject", ()):  # type: ignore[attr-defined]
        for key, value in rdn:
            if key == "commonName":
                return f"{value!r}"
    return "a certificate"


def _demo_keys(catalog: Catalog) -> list[str]:
    now = time.time_ns()
    return [k.id for k in catalog.keys() if k.name == "demo" and k.role is Role.ADMIN
            and k.state(now) is KeyState.ACTIVE]

