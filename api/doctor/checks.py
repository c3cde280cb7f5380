"""The checks of `citypilot doctor`: each a small pure function from facts to findings.

A finding is one line: what was found and the fix to apply. Its `id` names the check (a
check may give several findings, e.g. one per gateway); its level is `ok`, `info` (nothing to
fix, or nothing that can be known from here: the message says which), `warning` or `error`.
The facts are gathered in `facts.py`; these functions do no I/O, so each is tested alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from ingest.mqtt.probe import PROBE_PREFIX, BrokerFacts

QUEUE_FIX = ("set `max_queued_messages 0` and a sized `max_queued_bytes` in mosquitto.conf "
             "(as deploy/mosquitto/mosquitto.conf does), then restart the broker")
HEADROOM_WARN = 0.8  # share of an InfluxDB limit from which a warning is given
CERT_WARN_S = 30 * 86400.0  # a certificate expiring sooner than this is a warning
SKEW_TOLERANCE_S = 2.0  # a negative ingest delay beyond this: the gateway's clock is ahead
DELAY_WARN_S = 60.0  # even the smallest delay of a gateway above this: behind, or backlogged
STORE_SKEW_WARN_S = 5.0
ROLLUP_LAG_WARN_S = 600.0  # ten rollup intervals of `citypilot rollup`'s default 60 s


class Level(StrEnum):
    OK = "ok"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class Finding(BaseModel):
    """One line of `citypilot doctor`: what it found and what to do."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    id: str
    level: Level
    message: str
    fix: str = ""

    def line(self) -> str:
        fix = f" — fix: {self.fix}" if self.fix else ""
        return f"{self.level.value:<7} {self.id}: {self.message}{fix}"


def ok(id_: str, message: str) -> Finding:
    return Finding(id=id_, level=Level.OK, message=message)


def exit_code(findings: Iterable[Finding]) -> int:
    """0 when clean (ok and info only), 1 with warnings, 2 with errors."""
    levels = {f.level for f in findings}
    return 2 if Level.ERROR in levels else 1 if Level.WARNING in levels else 0


# -- the broker ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MosquittoConf:
    """What the broker's own config file says (`--mosquitto-conf`), None where it is silent
    (Mosquitto's defaults apply: persistence off, 1,000 queued messages)."""

    persistence: bool | None = None
    max_queued_messages: int | None = None
    max_queued_bytes: int | None = None


def parse_mosquitto_conf(text: str) -> MosquittoConf:
    """The three settings that decide whether a disconnected collector's queue survives; the
    last occurrence wins, as in Mosquitto."""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        parts = raw.split("#", 1)[0].split()
        if len(parts) >= 2:
            values[parts[0]] = parts[1]

    def number(key: str) -> int | None:
        value = values.get(key)
        return int(value) if value is not None and value.isdigit() else None

    persistence = values.get("persistence")
    return MosquittoConf(None if persistence is None else persistence.lower() == "true",
                         number("max_queued_messages"), number("max_queued_bytes"))


def broker(facts: BrokerFacts, conf: MosquittoConf | None, probe_account: str) -> list[Finding]:
    if facts.error is not None:
        return [Finding(id="broker.connect", level=Level.ERROR, message=facts.error,
                        fix="check CITYPILOT_MQTT_URL (host, port, credentials, mqtts:// and "
                        "CITYPILOT_MQTT_CA_FILE) and that the broker runs")]
    seen = facts.version or "a broker without $SYS/broker/version (or an ACL that hides it)"
    out = [ok("broker.connect", f"{facts.broker}: {seen}"
              + (f", up {facts.uptime}" if facts.uptime else ""))]
    return [*out, _drops(facts), _queue(facts, conf, probe_account), *_persistence(facts, conf)]


def _drops(facts: BrokerFacts) -> Finding:
    if facts.dropped is None:
        return Finding(id="broker.drops", level=Level.INFO, message="the broker's count of "
                       "dropped messages is unknown: Mosquitto publishes "
                       "$SYS/broker/publish/messages/dropped only when it changes, retained "
                       "for 60 s (so it did not change in the last minute), or this account "
                       "may not read it", fix="")
    if facts.dropped == 0:
        return ok("broker.drops", "the broker has dropped no message since it started")
    return Finding(id="broker.drops", level=Level.WARNING,
                   message=f"the broker has dropped {facts.dropped} messages since it started "
                   "(full client queues): they never reached a collector", fix=QUEUE_FIX)


def _queue(facts: BrokerFacts, conf: MosquittoConf | None, account: str) -> Finding:
    limit = None if conf is None else conf.max_queued_messages
    if conf is not None and limit is None:
        limit = 1000  # the file is silent: Mosquitto's default
    if limit is not None and limit > 0:
        return Finding(id="broker.queue", level=Level.WARNING,
                       message=f"mosquitto.conf keeps at most {limit} messages for a "
                       "disconnected client and drops the rest while a collector restarts",
                       fix=QUEUE_FIX)
    probe = facts.probe
    if probe is not None and probe.session_kept and probe.received < probe.sent:
        return Finding(id="broker.queue", level=Level.WARNING,
                       message=f"the broker kept {probe.received} of {probe.sent} messages "
                       "queued for a disconnected client (a per-client limit, stock 1,000): a "
                       "collector away for longer loses the rest", fix=QUEUE_FIX)
    if probe is not None and probe.session_kept:
        said = " and mosquitto.conf sets no count limit" if limit == 0 else (
            f"; a limit above {probe.sent} cannot be seen from outside")
        return ok("broker.queue", f"the broker kept all {probe.sent} probe messages queued "
                  f"for a disconnected client{said}")
    if limit == 0:
        return ok("broker.queue", "mosquitto.conf sets no count limit on a client's queue")
    why = facts.refused or "the probe is off (--probe-messages 0)"
    return Finding(id="broker.queue", level=Level.INFO,
                   message=f"the per-client queue limit is unknown: {why}",
                   fix=f"let {account} read and write {PROBE_PREFIX}/# (ACL: `topic readwrite "
                   f"{PROBE_PREFIX}/#`), pass --probe-url, or --mosquitto-conf")


def _persistence(facts: BrokerFacts, conf: MosquittoConf | None) -> list[Finding]:
    out = []
    if facts.probe is not None and not facts.probe.session_kept:
        out.append(Finding(id="broker.session", level=Level.ERROR,
                           message="the broker forgot a persistent session (MQTT 5 Session "
                           "Expiry) as soon as it disconnected: a restarting collector loses "
                           "its queue", fix="remove any `max_session_expiry_interval` or "
                           "`persistent_client_expiration` below a day from mosquitto.conf"))
    if conf is None or conf.persistence is None:
        out.append(Finding(
            id="broker.persistence", level=Level.INFO if conf is None else Level.WARNING,
            message="whether queued messages survive a broker restart cannot be seen from "
            "outside the broker ($SYS does not tell)" if conf is None else
            "mosquitto.conf does not set `persistence`: Mosquitto's default (off) loses every "
            "queued message and session on a restart",
            fix="check `persistence true` in mosquitto.conf (or pass --mosquitto-conf)"
            if conf is None else "set `persistence true` and `persistence_location`"))
    elif conf.persistence:
        out.append(ok("broker.persistence", "mosquitto.conf sets `persistence true`"))
    else:
        out.append(Finding(id="broker.persistence", level=Level.WARNING,
                           message="mosquitto.conf sets `persistence false`: a broker restart "
                           "loses every queued message and session",
                           fix="set `persistence true` and `persistence_location`"))
    return out


# -- the store ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Headroom:
    """Series per database and the largest tag-value count, against InfluxDB's limits
    (0: unlimited); `told` when SHOW DIAGNOSTICS gave the limits (else they are assumed)."""

    series: dict[str, int]  # database -> series (InfluxDB's estimate)
    values: tuple[str, str, int] | None  # (measurement, tag key, distinct values), the largest
    max_series: int
    max_values: int
    told: bool


def store_version(version: str | None, where: str) -> Finding:
    if version is None:
        return Finding(id="store.version", level=Level.WARNING,
                       message=f"{where} answered /ping without an X-Influxdb-Version header: "
                       "not InfluxDB, or a proxy that strips it", fix="point "
                       "CITYPILOT_STORE_URL at InfluxDB 1.x itself")
    major = version.lstrip("v").split(".", 1)[0]
    if major != "1":
        return Finding(id="store.version", level=Level.WARNING,
                       message=f"{where} is InfluxDB {version}: citypilot speaks the 1.x API "
                       "(/write, /query with InfluxQL), which 2.x and 3.x serve only in part",
                       fix="use InfluxDB 1.x (1.6 to 1.8), or map a database and retention "
                       "policy (DBRP) and a v1 user on 2.x")
    return ok("store.version", f"{where} is InfluxDB {version}")


def headroom(h: Headroom) -> list[Finding]:
    assumed = "" if h.told else " (assumed: SHOW DIAGNOSTICS needs an admin user; pass " \
        "--max-series-per-database / --max-values-per-tag as in influxdb.conf)"
    out = [_limit("store.series", f"database {db!r} holds about {n} series", n,
                  h.max_series, "max-series-per-database", assumed)
           for db, n in sorted(h.series.items())]
    if h.values is not None:
        measurement, tag, n = h.values
        out.append(_limit("store.values_per_tag", f"tag {tag!r} of {measurement!r} has {n} "
                          "values", n, h.max_values, "max-values-per-tag", assumed))
    return out


def _limit(id_: str, what: str, n: int, limit: int, key: str, assumed: str) -> Finding:
    if limit <= 0:
        return ok(id_, f"{what}; {key} is 0 (unlimited){assumed}")
    share = n / limit
    text = f"{what}, {share:.0%} of {key} = {limit}{assumed}"
    if share < HEADROOM_WARN:
        return ok(id_, text)
    return Finding(id=id_, level=Level.ERROR if n >= limit else Level.WARNING,
                   message=text + ("; writes of new series are refused" if n >= limit else ""),
                   fix=f"raise {key} in influxdb.conf ([data]) and restart InfluxDB, or drop "
                   "old series (a shorter retention policy)")


def store_clock(offset_s: float | None, where: str) -> Finding:
    if offset_s is None:
        return Finding(id="store.clock", level=Level.INFO,
                       message=f"{where} sent no Date header: its clock is not known")
    text = f"{where}'s clock is {offset_s:+.0f} s from this host's (to the second)"
    if abs(offset_s) <= STORE_SKEW_WARN_S:
        return ok("store.clock", text)
    return Finding(id="store.clock", level=Level.WARNING, message=text,
                   fix="synchronise both clocks (chrony or systemd-timesyncd)")


# -- the spool ----------------------------------------------------------------------------

def spool(directory: str, *, free: int | None, used: int, bound: int, writable: bool,
          batch_bytes: int) -> Finding:
    """Free space on the spool's filesystem against what the spool may still grow by."""
    if free is None or not writable:
        return Finding(id="spool.disk", level=Level.ERROR,
                       message=f"the spool directory {directory} cannot be written",
                       fix="create it writable for the collector, or set CITYPILOT_SPOOL_DIR")
    need = max(0, bound - used)
    text = (f"the spool at {directory} holds {_mib(used)} of its {_mib(bound)} bound; "
            f"{_mib(free)} free on its disk")
    if free >= need:
        return ok("spool.disk", text)
    level = Level.ERROR if free < 2 * batch_bytes else Level.WARNING
    return Finding(id="spool.disk", level=level,
                   message=text + ": the disk fills before the bound, and then the collector "
                   "stops acknowledging", fix=f"free {_mib(need - free)} there, or lower "
                   f"CITYPILOT_SPOOL_MAX_BYTES to {max(0, used + free) // 2} or less")


def _mib(n: int) -> str:
    return f"{n / 2**20:.0f} MiB"


# -- clocks -------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class GatewayDelay:
    pilot: str
    gateway: str
    min_s: float  # the smallest ingest_delay_s in the window
    max_s: float


def gateway_clocks(delays: Sequence[GatewayDelay], *, window_s: float, future: int,
                   max_future_s: float) -> list[Finding]:
    """`ingest_delay_s` is collector time minus device time: a negative one means the
    device's clock is ahead; the smallest of a gateway's delays bounds its skew."""
    hours = f"{window_s / 3600:g} h"
    out = []
    for d in delays:
        name = f"{d.pilot}/{d.gateway}"
        if d.min_s < -SKEW_TOLERANCE_S:
            out.append(Finding(id="clock.gateway", level=Level.WARNING,
                               message=f"gateway {name}'s clock runs at least "
                               f"{-d.min_s:.1f} s ahead of the collector's (ingest_delay_s "
                               f"down to {d.min_s:.1f} s in the last {hours})",
                               fix="synchronise the gateway's clock (chrony or "
                               "systemd-timesyncd) and the collector's"))
        elif d.min_s > DELAY_WARN_S:
            out.append(Finding(id="clock.gateway", level=Level.WARNING,
                               message=f"every reading of gateway {name} in the last {hours} "
                               f"arrived at least {d.min_s:.0f} s late: its clock is behind, "
                               "or it sent only from its spool",
                               fix="synchronise the gateway's clock; check its uplink"))
    if future:
        out.append(Finding(id="clock.future", level=Level.WARNING,
                           message=f"{future} messages in the last {hours} were dead-lettered "
                           f"as future_timestamp (more than {max_future_s:g} s ahead): a "
                           "gateway's clock is far ahead",
                           fix="synchronise the gateways' clocks, then `citypilot deadletters "
                           "replay --reason future_timestamp`"))
    if not out:
        out.append(ok("clock.gateway", f"{len(delays)} gateways reported in the last {hours}; "
                      f"none more than {SKEW_TOLERANCE_S:g} s ahead or {DELAY_WARN_S:g} s "
                      "behind"))
    return out


# -- TLS, secrets, rollups ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Certificate:
    where: str  # the file or the endpoint
    subject: str
    not_after_s: float | None  # Unix time; None: could not be read (see `error`)
    error: str | None = None


def certificates(certs: Sequence[Certificate], now_s: float) -> list[Finding]:
    out = []
    for c in certs:
        if c.not_after_s is None:
            out.append(Finding(id="tls.expiry", level=Level.ERROR,
                               message=f"{c.where}: {c.error or 'no certificate'}",
                               fix="renew the certificate, or name the right CA file "
                               "(CITYPILOT_MQTT_CA_FILE)"))
            continue
        left = c.not_after_s - now_s
        text = f"{c.where}: {c.subject} " + (f"expired {-left / 86400:.0f} days ago" if left < 0
                                             else f"expires in {left / 86400:.0f} days")
        level = Level.ERROR if left < 0 else Level.WARNING if left < CERT_WARN_S else Level.OK
        out.append(Finding(id="tls.expiry", level=level, message=text,
                           fix="" if level is Level.OK else "renew it and reload the server "
                           "that presents it (or replace the CA file)"))
    return out


def secrets(shipped: Sequence[str], demo_keys: Sequence[str]) -> list[Finding]:
    out = [Finding(id="secrets.shipped", level=Level.ERROR,
                   message=f"{where} uses a password shipped with citypilot",
                   fix="set a secret of your own (.env, the Kubernetes Secret, the broker's "
                   "password file)") for where in shipped]
    out += [Finding(id="secrets.demo_key", level=Level.WARNING,
                    message=f"the catalogue holds an active admin key named `demo` ({key}) "
                    "that `citypilot up --demo` made", fix=f"citypilot apikey revoke {key}")
            for key in demo_keys]
    return out or [ok("secrets.shipped", "no shipped password or demo key is in use")]


def rollup_lag(lag_s: float | None) -> Finding:
    if lag_s is None:
        return Finding(id="rollups.lag", level=Level.INFO, message="no rollups: KPIs read raw "
                       "points (slower over long periods)", fix="")
    text = f"the last rollup pass began {lag_s:.0f} s ago (citypilot_rollup_lag_seconds)"
    if math.isfinite(lag_s) and lag_s <= ROLLUP_LAG_WARN_S:
        return ok("rollups.lag", text)
    return Finding(id="rollups.lag", level=Level.WARNING, message=text + ": late writes to "
                   "rolled-up hours are missing from KPIs until the next pass",
                   fix="run `citypilot rollup` (it runs until stopped), and alert on "
                   "citypilot_rollup_lag_seconds")
