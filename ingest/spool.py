"""The on-disk spool: a bounded, crash-safe FIFO of opaque records (SQLite in WAL mode).

Shared by the collector (batches of points waiting for the store) and the gateway agent
(messages waiting for the uplink), like Telegraf's `models/buffer.go`: records are put
durably, read oldest-first in a transaction (`peek` then `remove` once they are delivered, or
nothing, which keeps them), and when the bound is reached the oldest are dropped and counted
(the count survives restarts). One process owns a spool directory at a time: an advisory
`flock`, which the kernel releases when the owner dies, so a lock left by a `kill -9` never
blocks the next start.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    items INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('dropped_items', 0), ('bytes', 0), ('items', 0);
"""


class SpoolError(Exception):
    """The spool cannot be used (directory locked by another process, disk unusable)."""


@dataclass(frozen=True, slots=True)
class Record:
    id: int
    items: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Depth:
    records: int
    items: int
    bytes: int


class Spool:
    """A bounded FIFO of byte records in `directory/spool.db`; thread-safe, synchronous.

    `max_bytes` bounds the sum of record bodies; `put` drops the oldest records to make room
    (a single record larger than the bound is still kept alone, so nothing is refused).
    """

    def __init__(self, directory: str | Path, *, max_bytes: int = 1 << 30,
                 name: str = "spool") -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._name = name
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._lockfile: int | None = None

    def open(self) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / f"{self._name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self.directory}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise SpoolError(f"spool directory {self.directory} is in use by another running "
                             "process; give each collector its own CITYPILOT_SPOOL_DIR") from None
        self._lockfile = fd
        try:
            db = sqlite3.connect(self.directory / f"{self._name}.db", isolation_level=None,
                                 check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a spooled record is acknowledged data
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self.close()
            raise SpoolError(f"cannot open spool {self.directory}: {exc}") from exc
        self._db = db
        depth = self.depth()
        if depth.records:
            log.info("spool holds a backlog", extra={"spool": str(self.directory),
                     "records": depth.records, "items": depth.items, "bytes": depth.bytes})

    def close(self) -> None:
        # Under the lock: a `peek`/`remove` started by `asyncio.to_thread` keeps running in its
        # thread after the awaiting task is cancelled, and closing a sqlite3 connection while
        # another thread is inside it crashes the interpreter (seen as a SIGSEGV in CI).
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
            if self._lockfile is not None:
                os.close(self._lockfile)  # releases the flock
                self._lockfile = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise SpoolError("spool is not open")
        return self._db

    def put(self, body: bytes, items: int = 1) -> int:
        """Append one record durably; returns how many items were dropped to make room."""
        return self.put_many([(body, items)])

    def put_many(self, records: list[tuple[bytes, int]]) -> int:
        """Append (body, items) records in one durable transaction; returns items dropped."""
        with self._lock:
            db = self._conn
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO records (items, body) VALUES (?, ?)",
                               [(items, body) for body, items in records])
                self._adjust(db, sum(len(b) for b, _ in records), sum(n for _, n in records))
                dropped = self._trim(db)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK") if db.in_transaction else None
                raise SpoolError(f"cannot write spool {self.directory}: {exc}") from exc
        if dropped:
            log.warning("spool full: dropped oldest items", extra={
                "spool": str(self.directory), "dropped": dropped, "max_bytes": self.max_bytes})
        return dropped

    def _adjust(self, db: sqlite3.Connection, nbytes: int, items: int) -> None:
        db.execute("UPDATE meta SET value = value + ? WHERE key = 'bytes'", (nbytes,))
        db.execute("UPDATE meta SET value = value + ? WHERE key = 'items'", (items,))

    def _trim(self, db: sqlite3.Connection) -> int:
        dropped = 0
        while self._meta(db, "bytes") > self.max_bytes:
            row = db.execute("SELECT id, items, length(body) FROM records ORDER BY id LIMIT 2"
                             ).fetchall()
            if len(row) < 2:  # never drop the record just written
                break
            rid, items, size = row[0]
            db.execute("DELETE FROM records WHERE id = ?", (rid,))
            self._adjust(db, -size, -items)
            db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped_items'", (items,))
            dropped += items
        return int(dropped)

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> int:
        return int(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def peek(self, limit: int = 1) -> list[Record]:
        """The oldest records, oldest first; they stay until `remove`d."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, items, body FROM records ORDER BY id LIMIT ?", (limit,)).fetchall()
        return [Record(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]

    def remove(self, ids: list[int]) -> None:
        """Forget delivered records."""
        if not ids:
            return
        with self._lock:
            db = self._conn
            try:
                db.execute("BEGIN IMMEDIATE")
                marks = ",".join("?" * len(ids))
                nbytes, items = db.execute(
                    f"SELECT coalesce(sum(length(body)), 0), coalesce(sum(items), 0) "
                    f"FROM records WHERE id IN ({marks})", ids).fetchone()
                db.execute(f"DELETE FROM records WHERE id IN ({marks})", ids)
                self._adjust(db, -int(nbytes), -int(items))
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK") if db.in_transaction else None
                raise SpoolError(f"cannot update spool {self.directory}: {exc}") from exc

    def depth(self) -> Depth:
        with self._lock:
            db = self._conn
            records = int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            return Depth(records, self._meta(db, "items"), self._meta(db, "bytes"))

    @property
    def dropped(self) -> int:
        """Items dropped for room since the spool was created (persists across restarts)."""
        with self._lock:
            return self._meta(self._conn, "dropped_items")
