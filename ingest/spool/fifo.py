"""The on-disk spool: a bounded, crash-safe FIFO of opaque records (SQLite in WAL mode).

Shared by the collector (batches of points waiting for the store) and the gateway agent
(messages waiting for the uplink), like Telegraf's `models/buffer.go`: records are put
durably, read oldest-first in a transaction (`peek` then `remove` once they are delivered, or
nothing, which keeps them), and when the bound is reached the oldest are dropped and counted
(the count survives restarts). One process owns a spool directory at a time: an advisory
`flock`, which the kernel releases when the owner dies, so a lock left by a `kill -9` never
blocks the next start.

A disk that fails is a `SpoolError` from every method (full, read-only, gone), never a raw
`sqlite3` one: the caller keeps what it could not put and tries again. A database file that
SQLite finds corrupt (a power cut on storage that lied about `fsync`, a file truncated
mid-record) is salvaged where it is found: the records that still read are copied into a fresh
file, the others are skipped and counted (`skipped_records`, logged, kept across restarts),
and the operation goes on, so a damaged spool never becomes a crash loop.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import sqlite3
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from ingest.spool.file import Damaged, adjust, connect, corrupt, intact, meta
from ingest.spool.salvage import salvage

log = logging.getLogger(__name__)
T = TypeVar("T")

class SpoolError(Exception):
    """The spool cannot be used (directory locked by another process, disk unusable)."""


class SpoolLocked(SpoolError):
    """Another running process owns the spool directory: a configuration error."""


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
            raise SpoolLocked(f"spool directory {self.directory} is in use by another running "
                              "process; give each collector its own CITYPILOT_SPOOL_DIR") from None
        self._lockfile = fd
        try:
            try:
                self._db = connect(self._path)
            except sqlite3.DatabaseError as exc:
                if not corrupt(exc):
                    raise
                self._salvage(exc)
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise SpoolError(f"cannot open spool {self.directory}: {exc}") from exc
        depth = self.depth()
        if depth.records:
            log.info("spool holds a backlog", extra={"spool": str(self.directory),
                     "records": depth.records, "items": depth.items, "bytes": depth.bytes})

    @property
    def _path(self) -> Path:
        return self.directory / f"{self._name}.db"

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

    def _guarded(self, what: str, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` under the lock as one transaction-or-query; a corrupt file is salvaged
        and `op` tried once more, any other SQLite error is a SpoolError naming `what`."""
        with self._lock:
            for attempt in (1, 2):
                db = self._conn
                try:
                    return op(db)
                except sqlite3.Error as exc:
                    if db.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            db.execute("ROLLBACK")
                    if attempt == 1 and isinstance(exc, sqlite3.DatabaseError) \
                            and corrupt(exc):
                        try:
                            self._salvage(exc)
                        except (sqlite3.Error, OSError) as again:
                            raise SpoolError(f"cannot salvage spool {self.directory}: "
                                             f"{again}") from again
                        continue
                    raise SpoolError(f"cannot {what} spool {self.directory}: {exc}") from exc
        raise AssertionError("unreachable")

    def check(self, min_free_bytes: int = 0) -> None:
        """Open the spool if it is not, and prove that it takes a write (a transaction that
        changes nothing) and that its filesystem has `min_free_bytes` left; SpoolError
        otherwise. How a caller learns the disk is back: a full disk may still take a tiny
        write (SQLite reuses the space of its write-ahead log) and refuse the next batch."""
        if self._db is None:
            self.open()
        try:
            fs = os.statvfs(self.directory)
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self.directory}: {exc}") from exc
        free = fs.f_bavail * fs.f_frsize
        if free < min_free_bytes:
            raise SpoolError(f"the filesystem of spool {self.directory} is full: {free} bytes "
                             f"free, a batch may need {min_free_bytes}")

        def touch(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute("UPDATE meta SET value = value WHERE key = 'bytes'")
            db.execute("COMMIT")
        self._guarded("write", touch)

    def put(self, body: bytes, items: int = 1) -> int:
        """Append one record durably; returns how many items were dropped to make room."""
        return self.put_many([(body, items)])

    def put_many(self, records: list[tuple[bytes, int]]) -> int:
        """Append (body, items) records in one durable transaction; returns items dropped."""
        def put(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO records (items, body, crc) VALUES (?, ?, ?)",
                           [(items, body, zlib.crc32(body)) for body, items in records])
            adjust(db, sum(len(b) for b, _ in records), sum(n for _, n in records))
            dropped = self._trim(db)
            db.execute("COMMIT")
            return dropped

        dropped = self._guarded("write", put)
        if dropped:
            log.warning("spool full: dropped oldest items", extra={
                "spool": str(self.directory), "dropped": dropped, "max_bytes": self.max_bytes})
        return dropped

    def _trim(self, db: sqlite3.Connection) -> int:
        dropped = 0
        while meta(db, "bytes") > self.max_bytes:
            row = db.execute("SELECT id, items, length(body) FROM records ORDER BY id LIMIT 2"
                             ).fetchall()
            if len(row) < 2:  # never drop the record just written
                break
            rid, items, size = row[0]
            db.execute("DELETE FROM records WHERE id = ?", (rid,))
            adjust(db, -size, -items)
            db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped_items'", (items,))
            dropped += items
        return int(dropped)

    def peek(self, limit: int = 1) -> list[Record]:
        """The oldest records, oldest first; they stay until `remove`d."""
        def peek(db: sqlite3.Connection) -> list[Record]:
            rows = db.execute("SELECT id, items, body, crc FROM records ORDER BY id LIMIT ?",
                              (limit,)).fetchall()
            if not all(intact(r[2], r[3]) for r in rows):
                raise Damaged("a spooled record does not match its checksum")
            return [Record(int(r[0]), int(r[1]), bytes(r[2])) for r in rows]
        return self._guarded("read", peek)

    def remove(self, ids: list[int], *, skipped: bool = False) -> None:
        """Forget delivered records; `skipped`: records that cannot be delivered (their body
        does not decode), counted in `skipped`."""
        if not ids:
            return

        def remove(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            marks = ",".join("?" * len(ids))
            nbytes, items = db.execute(
                f"SELECT coalesce(sum(length(body)), 0), coalesce(sum(items), 0) "
                f"FROM records WHERE id IN ({marks})", ids).fetchone()
            db.execute(f"DELETE FROM records WHERE id IN ({marks})", ids)
            adjust(db, -int(nbytes), -int(items))
            if skipped:
                db.execute("UPDATE meta SET value = value + ? WHERE key = 'skipped_records'",
                           (len(ids),))
            db.execute("COMMIT")

        self._guarded("update", remove)

    def depth(self) -> Depth:
        def depth(db: sqlite3.Connection) -> Depth:
            records = int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            return Depth(records, meta(db, "items"), meta(db, "bytes"))
        return self._guarded("read", depth)

    @property
    def dropped(self) -> int:
        """Items dropped for room since the spool was created (persists across restarts)."""
        return self._guarded("read", lambda db: meta(db, "dropped_items"))

    @property
    def skipped(self) -> int:
        """Records found unreadable (a damaged file) and skipped, since the spool was
        created (persists across restarts, as far as the damage left the count readable)."""
        return self._guarded("read", lambda db: meta(db, "skipped_records"))

    def _salvage(self, why: sqlite3.Error) -> None:
        """Salvage a corrupt file in place (`salvage.salvage`); with the lock held, or in
        `open`."""
        if self._db is not None:
            self._db.close()
            self._db = None
        self._db = salvage(self._path, why, spool=str(self.directory))
