"""The catalogue: the pilot registry and the API keys, in one SQLite file.

KPIs need facts that readings do not carry: a pilot's population and timezone, each device's
kind, location, expected reporting interval and capacity, each service's capacity. Those live
here (`CITYPILOT_CATALOG_URL`), loaded from a TOML or YAML file or edited by admins over the
API. Collectors never write the catalogue: what reports without being registered is derived
from the store by the reader (`api.fleet`).

Each pilot is kept as one validated JSON document (the registry is small and always read a
pilot at a time), so the file format, the API and the table share one pydantic model.

API keys are `cpk_<id>_<secret>`: the id is a lookup prefix (one primary-key read per
request), the secret is 256 random bits stored only as a salted scrypt hash. For random
secrets a fast hash would resist brute force as well; scrypt costs little here because a
verified key is remembered (by a SHA-256 of it) for the process's lifetime, and it keeps a
leaked catalogue useless even for a weaker imported key. Revocation and expiry are read from
the row on every request, so a key created, revoked or expired while the API runs takes effect
at once. Callers may be on any thread: each thread gets its own connection.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import sqlite3
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from ingest import topics
from ingest.model import NAME_PATTERN

log = logging.getLogger(__name__)

IDENT_PATTERN = f"^{topics.ID_PATTERN}$"  # the topic grammar's pilot, gateway, device
Ident = Annotated[str, StringConstraints(pattern=IDENT_PATTERN)]
Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
Text = Annotated[str, StringConstraints(max_length=200)]
KEY_PREFIX = "cpk_"
_VERIFIED_MAX = 4096


class CatalogError(Exception):
    """The catalogue cannot be opened or read: a one-line, user-fixable message."""


class RegistryError(CatalogError):
    """A registry document is invalid; the message names the offending entry."""


class Role(StrEnum):
    VIEWER = "viewer"  # city staff: pilots, KPIs, exports
    OPERATOR = "operator"  # pilot operators: plus devices, readings, dead letters
    ADMIN = "admin"  # plus keys and the registry

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Gateway(_Entry):
    id: Ident
    name: Text | None = None
    location: Text | None = None


class Device(_Entry):
    id: Ident
    gateway: Ident
    kind: Name | None = Field(default=None, description="the telemetry kind it reports")
    service: Name | None = Field(default=None, description="the service it counts uses of")
    location: Text | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    interval_s: float | None = Field(default=None, gt=0, le=7 * 86400,
                                     description="expected reporting interval")
    capacity: float | None = Field(default=None, ge=0,
                                   description="bays, connectors, luminaires...")


class Service(_Entry):
    id: Name
    name: Text | None = None
    capacity: float | None = Field(default=None, gt=0,
                                   description="simultaneous users it can serve")


class Pilot(_Entry):
    id: Ident
    name: Text | None = None
    population: int | None = Field(default=None, ge=0, description="target population")
    timezone: str = Field(default="UTC",
                          description="IANA zone: periods start at local midnight")
    lighting_baseline_kwh_per_day: float | None = Field(
        default=None, gt=0, description="street lighting energy per day before the pilot")
    gateways: tuple[Gateway, ...] = ()
    devices: tuple[Device, ...] = ()
    services: tuple[Service, ...] = ()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {v!r} (use an IANA name such as "
                             "Europe/Lisbon)") from None
        return v

    @model_validator(mode="after")
    def _unique(self) -> Pilot:
        for what, items in (("gateway", self.gateways), ("device", self.devices),
                            ("service", self.services)):
            ids = [(getattr(x, "gateway", ""), x.id) for x in items]
            if len(ids) != len(set(ids)):
                raise ValueError(f"pilot {self.id}: a {what} id is listed twice")
        return self

    def with_gateways(self) -> Pilot:
        """The pilot with a gateway entry for every gateway its devices name."""
        known = {g.id for g in self.gateways}
        extra = sorted({d.gateway for d in self.devices} - known)
        return self.model_copy(update={"gateways": self.gateways + tuple(
            Gateway(id=g) for g in extra)}) if extra else self


class Registry(_Entry):
    pilots: tuple[Pilot, ...] = ()


def parse_registry(text: str, suffix: str) -> Registry:
    """A registry from TOML (`[[pilots]]`) or YAML (`pilots:`), by file suffix."""
    try:
        if suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise RegistryError(f"not valid {suffix.lstrip('.').upper() or 'TOML'}: "
                            f"{str(exc).splitlines()[0]}") from None
    try:
        return Registry.model_validate(data or {})
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in err["loc"])
        raise RegistryError(f"{where}: {err['msg']}") from None


class KeyState(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's record, never its secret."""

    id: str
    name: str
    role: Role
    pilots: frozenset[str] | None  # None: every pilot
    created_ns: int
    expires_ns: int | None
    revoked_ns: int | None

    def state(self, now_ns: int) -> KeyState:
        if self.revoked_ns is not None:
            return KeyState.REVOKED
        if self.expires_ns is not None and now_ns >= self.expires_ns:
            return KeyState.EXPIRED
        return KeyState.ACTIVE

    def may_read(self, pilot: str) -> bool:
        return self.pilots is None or pilot in self.pilots


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pilots (id TEXT PRIMARY KEY, doc TEXT NOT NULL,
                                   updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, pilots TEXT,
    salt BLOB NOT NULL, cost INTEGER NOT NULL, hash BLOB NOT NULL,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER, revoked_ns INTEGER);
"""
_KEY_COLUMNS = "id, name, role, pilots, created_ns, expires_ns, revoked_ns"


def parse_catalog_url(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not url.startswith("sqlite:///") or parts.query:
        raise CatalogError(f"catalogue URL {url!r}: the catalogue is SQLite, use "
                           "sqlite:///path/to/catalog.db")
    return Path(unquote(url[len("sqlite:///"):]))


def _hash(secret: str, salt: bytes, cost: int) -> bytes:
    # scrypt with r=8: n=2**14 takes 16 MiB and tens of milliseconds per check (the
    # verified-key cache keeps that off the request path after the first use of a key).
    return hashlib.scrypt(secret.encode(), salt=salt, n=cost, r=8, p=1, dklen=32)


class Catalog:
    """The catalogue at `url`, created when missing; thread-safe."""

    def __init__(self, url: str, *, busy_timeout_s: float = 5.0, key_cost: int = 2**14
                 ) -> None:
        """`key_cost`: scrypt's n for new keys (a power of two; stored with each hash)."""
        self.path = parse_catalog_url(url)
        self._timeout, self._cost = busy_timeout_s, key_cost
        self._verified: dict[str, bytes] = {}  # key id -> SHA-256 of the verified key
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as conn:
                conn.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
                conn.executescript(_SCHEMA)
        except OSError as exc:
            raise CatalogError(f"cannot open the catalogue {self.path}: {exc}") from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """This thread's connection (opening one costs a millisecond, more than a query);
        autocommit, so every statement reads the latest committed state."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        try:
            if conn is None:
                # Used by this thread only; `close` may run on another one.
                conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None,
                                       check_same_thread=False)
                self._local.conn = conn
                with self._lock:
                    self._open.append(conn)
            yield conn
        except sqlite3.Error as exc:
            if conn is not None and conn.in_transaction:
                conn.execute("ROLLBACK")
            raise CatalogError(f"catalogue {self.path}: {exc}") from None

    def close(self) -> None:
        """Close every thread's connection (the catalogue reopens them on use)."""
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()
        self._local = threading.local()

    # -- the registry --------------------------------------------------------------------

    def load(self, registry: Registry, now_ns: int | None = None) -> list[str]:
        """Add or replace each pilot of `registry` (others stay); their ids."""
        now = time.time_ns() if now_ns is None else now_ns
        rows = [(p.id, p.with_gateways().model_dump_json(), now) for p in registry.pilots]
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany("INSERT OR REPLACE INTO pilots (id, doc, updated_ns) "
                             "VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")
        log.info("registry loaded pilots=%s", ",".join(r[0] for r in rows))
        return [r[0] for r in rows]

    def pilots(self) -> list[Pilot]:
        with self._connect() as conn:
            rows = conn.execute("SELECT doc FROM pilots ORDER BY id").fetchall()
        return [Pilot.model_validate_json(doc) for (doc,) in rows]

    def pilot(self, pilot_id: str) -> Pilot | None:
        with self._connect() as conn:
            row = conn.execute("SELECT doc FROM pilots WHERE id = ?", (pilot_id,)).fetchone()
        return Pilot.model_validate_json(row[0]) if row else None

    def delete_pilot(self, pilot_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM pilots WHERE id = ?", (pilot_id,)).rowcount > 0

    # -- API keys -------------------------------------------------------------------------

    def create_key(self, name: str, role: Role, *, pilots: frozenset[str] | None = None,
                   expires_ns: int | None = None, now_ns: int | None = None
                   ) -> tuple[ApiKey, str]:
        """A new key's record and the key itself (shown once, never stored)."""
        now = time.time_ns() if now_ns is None else now_ns
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        record = ApiKey(key_id, name, Role(role), pilots, now, expires_ns, None)
        with self._connect() as conn:
            conn.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}, salt, cost, hash) VALUES (?, ?, ?, ?, "
                "?, ?, ?, ?, ?, ?)", (key_id, name, record.role.value,
                             None if pilots is None else json.dumps(sorted(pilots)), now,
                             expires_ns, None, salt, self._cost,
                             _hash(secret, salt, self._cost)))
        log.info("api key created id=%s role=%s", key_id, record.role.value)
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def keys(self) -> list[ApiKey]:
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_ns, id"
                                ).fetchall()
        return [_key(row) for row in rows]

    def revoke(self, key_id: str, now_ns: int | None = None) -> bool:
        """Revoke a key (by id); False when there is no such active key."""
        now = time.time_ns() if now_ns is None else now_ns
        with self._connect() as conn:
            changed = conn.execute("UPDATE api_keys SET revoked_ns = ? WHERE id = ? AND "
                                   "revoked_ns IS NULL", (now, key_id)).rowcount
        self._verified.pop(key_id, None)
        return changed > 0

    def verify(self, presented: str) -> ApiKey | None:
        """The key's record when `presented` is a known key (in any state: the caller
        refuses revoked and expired ones with a message), else None."""
        key_id, secret = split_key(presented)
        if not key_id:
            return None
        with self._connect() as conn:
            row = conn.execute(f"SELECT {_KEY_COLUMNS}, salt, cost, hash FROM api_keys "
                               "WHERE id = ?", (key_id,)).fetchone()
        if row is None:
            return None
        digest = hashlib.sha256(presented.encode()).digest()
        known = self._verified.get(key_id)
        if known is None or not hmac.compare_digest(known, digest):
            if not hmac.compare_digest(_hash(secret, row[-3], row[-2]), row[-1]):
                return None
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[key_id] = digest
        return _key(row[:-3])


def split_key(presented: str) -> tuple[str, str]:
    """(id, secret) of a well-formed key, else ("", "")."""
    if not presented.startswith(KEY_PREFIX) or len(presented) < len(KEY_PREFIX) + 14 \
            or presented[len(KEY_PREFIX) + 12] != "_":
        return "", ""
    key_id = presented[len(KEY_PREFIX):len(KEY_PREFIX) + 12]
    if any(c not in "0123456789abcdef" for c in key_id):
        return "", ""
    return key_id, presented[len(KEY_PREFIX) + 13:]


def _key(row: tuple[Any, ...]) -> ApiKey:
    key_id, name, role, pilots, created, expires, revoked = row
    return ApiKey(str(key_id), str(name), Role(role),
                  None if pilots is None else frozenset(json.loads(pilots)), int(created),
                  None if expires is None else int(expires),
                  None if revoked is None else int(revoked))
