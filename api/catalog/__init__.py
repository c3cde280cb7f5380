"""The catalogue: the pilot registry and the API keys, in one SQLite file.

KPIs need facts that readings do not carry (`registry.py`); the API needs its keys
(`keys.py`) and the SensorThings API numeric ids that stay the same across restarts
(`open_ids`: one number per entity name, given the first time the entity is shown). All
live here (`CITYPILOT_CATALOG_URL`), the registry loaded from a TOML or YAML file or
edited by admins over the API. Collectors never write the catalogue: what reports without
being registered is derived from the store by the reader (`api.fleet`). Only the API and the
command line read it.

Each pilot is kept as one validated JSON document (the registry is small and always read a
pilot at a time), so the file format, the API and the table share one pydantic model.
Revocation and expiry of a key are read from the row on every request, so a key created,
revoked or expired while the API runs takes effect at once. Callers may be on any thread:
each thread gets its own connection.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from api.catalog.keys import (
    KEY_PREFIX,
    ApiKey,
    KeyState,
    Role,
    hash_secret,
    key_from_row,
    split_key,
)
from api.catalog.registry import (
    LANGUAGES,
    MIN_USERS_FLOOR,
    Activity,
    ActivityType,
    Baseline,
    CatalogError,
    Device,
    Direction,
    Gateway,
    Helix,
    OpenData,
    Pilot,
    Registry,
    RegistryError,
    Service,
    Target,
    Text,
    Uptake,
    parse_registry,
)

__all__ = [
    "KEY_PREFIX", "LANGUAGES", "MIN_USERS_FLOOR", "Activity", "ActivityType", "ApiKey",
    "Baseline", "Catalog", "CatalogError", "Device", "Direction", "Gateway", "Helix",
    "KeyState", "OpenData", "Pilot", "Registry", "RegistryError", "Role", "Service", "Target",
    "Text", "Uptake", "parse_catalog_url", "parse_registry", "split_key",
]

log = logging.getLogger(__name__)
_VERIFIED_MAX = 4096


_SCHEMA = """
CREATE TABLE IF NOT EXISTS pilots (id TEXT PRIMARY KEY, doc TEXT NOT NULL,
                                   updated_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, pilots TEXT,
    salt BLOB NOT NULL, cost INTEGER NOT NULL, hash BLOB NOT NULL,
    created_ns INTEGER NOT NULL,
    expires_ns INTEGER, revoked_ns INTEGER);
CREATE TABLE IF NOT EXISTS open_ids (id INTEGER PRIMARY KEY AUTOINCREMENT,
                                     entity TEXT NOT NULL UNIQUE);
"""
_KEY_COLUMNS = "id, name, role, pilots, created_ns, expires_ns, revoked_ns"


def parse_catalog_url(url: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "sqlite" or not url.startswith("sqlite:///") or parts.query:
        raise CatalogError(f"catalogue URL {url!r}: the catalogue is SQLite, use "
                           "sqlite:///path/to/catalog.db")
    return Path(unquote(url[len("sqlite:///"):]))


class Catalog:
    """The catalogue at `url`, created when missing; thread-safe."""

    def __init__(self, url: str, *, busy_timeout_s: float = 5.0, key_cost: int = 2**14
                 ) -> None:
        """`key_cost`: scrypt's n for new keys (a power of two; stored with each hash)."""
        self.path = parse_catalog_url(url)
        self._timeout, self._cost = busy_timeout_s, key_cost
        self._verified: dict[str, bytes] = {}  # key id -> SHA-256 of the verified key
        # Parsed pilots by id, with the document they were parsed from: a pilot of a
        # thousand devices takes 10 ms to validate, and most requests read the registry.
        self._parsed: dict[str, tuple[str, Pilot]] = {}
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
            rows = conn.execute("SELECT id, doc FROM pilots ORDER BY id").fetchall()
        return [self._pilot(pilot_id, doc) for pilot_id, doc in rows]

    def pilot(self, pilot_id: str) -> Pilot | None:
        with self._connect() as conn:
            row = conn.execute("SELECT doc FROM pilots WHERE id = ?", (pilot_id,)).fetchone()
        return self._pilot(pilot_id, row[0]) if row else None

    def _pilot(self, pilot_id: str, doc: str) -> Pilot:
        """The pilot as parsed before when its document is the same text (pilots are
        frozen models: no caller can alter the shared one)."""
        known = self._parsed.get(pilot_id)
        if known is not None and known[0] == doc:
            return known[1]
        parsed = Pilot.model_validate_json(doc)
        self._parsed[pilot_id] = (doc, parsed)
        return parsed

    def delete_pilot(self, pilot_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("DELETE FROM pilots WHERE id = ?", (pilot_id,)).rowcount > 0

    # -- persistent numeric ids (SensorThings) -------------------------------------------

    def ids(self, entities: list[str]) -> dict[str, int]:
        """The number of each entity name, a new one for a name never seen (a write only
        then: listing known entities is reads)."""
        with self._connect() as conn:
            out = self._known_ids(conn, entities)
            missing = [e for e in dict.fromkeys(entities) if e not in out]
            if missing:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR IGNORE INTO open_ids (entity) VALUES (?)",
                                 [(e,) for e in missing])
                conn.execute("COMMIT")
                out.update(self._known_ids(conn, missing))
        return out

    @staticmethod
    def _known_ids(conn: sqlite3.Connection, entities: list[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in range(0, len(entities), 500):
            chunk = entities[i:i + 500]
            marks = ", ".join("?" for _ in chunk)
            out.update((str(e), int(n)) for e, n in conn.execute(
                f"SELECT entity, id FROM open_ids WHERE entity IN ({marks})", chunk))
        return out

    def entity(self, number: int) -> str | None:
        """The entity name of a number, None when no entity has it."""
        with self._connect() as conn:
            row = conn.execute("SELECT entity FROM open_ids WHERE id = ?", (number,)).fetchone()
        return str(row[0]) if row else None

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
                             hash_secret(secret, salt, self._cost)))
        log.info("api key created id=%s role=%s", key_id, record.role.value)
        return record, f"{KEY_PREFIX}{key_id}_{secret}"

    def keys(self) -> list[ApiKey]:
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {_KEY_COLUMNS} FROM api_keys ORDER BY created_ns, id"
                                ).fetchall()
        return [key_from_row(row) for row in rows]

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
            if not hmac.compare_digest(hash_secret(secret, row[-3], row[-2]), row[-1]):
                return None
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[key_id] = digest
        return key_from_row(row[:-3])
