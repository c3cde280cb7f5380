"""SQLite's "transport": the URL, the schema, one connection on its own thread, and the one
place where sqlite3 exceptions become the store's own.

One long table, a row per (series, field, time), and `rollup_dirty`, the (pilot, hour) slots
that writes touched, for the rollup worker (marked in the same transaction as the points).
A series is the measurement plus the six tag keys citypilot writes (an absent tag is ''), as
in InfluxDB; the primary key is that identity
plus field and time, so rewriting a point replaces the fields it carries and keeps the others:
InfluxDB's merge. Unlike InfluxDB, a field may hold a number in one point and a string in
another.

Durability: "acknowledged = durable". The collector acknowledges a message to the broker as
soon as `write` returns, so the commit must survive a power cut, which is common for a Pi on
an SD card: WAL with `synchronous=FULL` (fsync at every commit). `NORMAL` in WAL mode is only
safe against a crash of the process: the last commits can roll back after a power loss. The
caller batches, so this costs one fsync per batch.

sqlite3 blocks, so each connection lives on its own single worker thread: the writer has one,
each reader one (WAL lets reads proceed while a write commits). `translate` maps every
sqlite3 exception (as httpx's `map_httpcore_exceptions` does for httpcore); none leaves
`stores/`.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar
from urllib.parse import unquote, urlsplit

from ingest.model import TAG_KEYS
from ingest.stores.base import StoreConfigError, StoreError, StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

TAGS = ", ".join(TAG_KEYS)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS points (
    measurement TEXT NOT NULL,
    {" ".join(f"{tag} TEXT NOT NULL DEFAULT ''," for tag in TAG_KEYS)}
    ts INTEGER NOT NULL,
    field TEXT NOT NULL,
    num REAL,
    str TEXT,
    PRIMARY KEY (measurement, {TAGS}, field, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_field_time ON points (measurement, field, ts);
CREATE INDEX IF NOT EXISTS points_device_time ON points (measurement, pilot, gateway, device, ts);
CREATE TABLE IF NOT EXISTS rollup_dirty (
    pilot TEXT NOT NULL,
    hour INTEGER NOT NULL,
    marked_at INTEGER NOT NULL,
    PRIMARY KEY (pilot, hour)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rollup_dirty_marked ON rollup_dirty (marked_at);
"""
# Errors that mean our SQL or arguments are wrong (or a constraint refuses them), not that
# the database is unwell: waiting will not help.
_REJECTED = (sqlite3.ProgrammingError, sqlite3.InterfaceError, sqlite3.IntegrityError,
             sqlite3.DataError, sqlite3.NotSupportedError)
SQLITE_ERRORS = (sqlite3.Error, sqlite3.Warning)  # every exception sqlite3 raises


def parse_url(url: str) -> Path:
    """`sqlite:///path/to/file.db` (relative) or `sqlite:////abs/file.db`, as SQLAlchemy."""
    parts = urlsplit(url)
    path = unquote(url[len("sqlite:///"):]) if url.startswith("sqlite:///") else ""
    if parts.scheme != "sqlite" or parts.netloc or not path or parts.query or parts.fragment:
        raise StoreConfigError("SQLite store URL must look like sqlite:///path/to/file.db")
    return Path(path)


def translate(exc: sqlite3.Error | sqlite3.Warning) -> StoreError:
    name = getattr(exc, "sqlite_errorname", type(exc).__name__)
    if isinstance(exc, (*_REJECTED, sqlite3.Warning)):
        return StoreRejected(f"SQLite rejected a statement ({name}): {exc}")
    # busy, locked, I/O error, disk full, read-only, corrupt...: the data must wait (spooled).
    return StoreUnavailable(f"SQLite store unavailable ({name}): {exc}")


_TABLES = frozenset({"points", "rollup_dirty"})  # what `_SCHEMA` creates


def _setup(conn: sqlite3.Connection, deadline_s: float) -> None:
    # A file that has its tables is left as it is: changing the journal mode or running DDL
    # takes the write lock, and a reader opened beside a committing writer must not wait.
    # On a new file two openers (the collector and the API, or a test's reader) may both
    # set it up; switching to WAL answers SQLITE_BUSY at once, without the busy timeout,
    # while the other holds the file, so the loser waits and looks again, up to the deadline.
    until = time.monotonic() + deadline_s
    while True:
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if _TABLES <= tables:
            return
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("sqlite journal mode is not WAL mode=%s", mode)
            conn.executescript(_SCHEMA)
            return
        except sqlite3.OperationalError as exc:
            if getattr(exc, "sqlite_errorname", "") != "SQLITE_BUSY" or \
                    time.monotonic() > until:
                raise
            time.sleep(0.05)


class Connection:
    """One sqlite3 connection to the store's file, opened and used on its own thread."""

    def __init__(self, url: str, name: str, deadline_s: float) -> None:
        self.path = parse_url(url)
        self._name, self._timeout = name, deadline_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        """Create the file (and its directory) and the schema if need be."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreConfigError(f"cannot create the directory of the SQLite store "
                                   f"{self.path}: {exc.strerror}") from None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
        try:
            await self.run(lambda conn: _setup(conn, self._timeout))
        except StoreError as exc:
            await self.close()
            raise StoreConfigError(f"cannot open the SQLite store {self.path}: {exc}") from None

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._executor is None:
            raise StoreRejected("the SQLite store was used outside `async with`")
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            if self._conn is None:
                # Autocommit: transactions are begun and ended explicitly by the writer.
                conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
                conn.execute("PRAGMA synchronous=FULL")
                self._conn = conn
            return fn(self._conn)
        except SQLITE_ERRORS as exc:
            raise translate(exc) from exc

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return

        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        try:
            await asyncio.get_running_loop().run_in_executor(executor, close)
        except SQLITE_ERRORS as exc:
            log.warning("sqlite close failed path=%s error=%s", self.path, exc)
        finally:
            executor.shutdown(wait=False)


class OnConnection:
    """What the writer and the reader share: a connection of their own, opened on entering.

    `deadline_s`: how long a call waits for a lock (SQLite's busy timeout) before
    StoreUnavailable, the same option as the InfluxDB store's; `busy_timeout_s` is accepted
    as another name for it."""

    url_scheme = "sqlite"
    thread_name = "sqlite"

    def __init__(self, url: str, *, deadline_s: float = 5.0,
                 busy_timeout_s: float | None = None) -> None:
        self._conn = Connection(url, self.thread_name,
                                deadline_s if busy_timeout_s is None else busy_timeout_s)
        self.path = self._conn.path

    async def __aenter__(self) -> Self:
        await self._conn.open()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._conn.close()

    async def ping(self) -> None:
        await self._conn.run(lambda conn: conn.execute("SELECT 1").fetchall())
