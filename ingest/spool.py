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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    items INTEGER NOT NULL,
    body BLOB NOT NULL,
    crc INTEGER  -- zlib.crc32 of body; NULL in records of spools older than the column
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('dropped_items', 0), ('bytes', 0), ('items', 0),
    ('skipped_records', 0);
"""
_CORRUPT = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_SALVAGE_GIVE_UP = 10_000  # unreadable or absent ids in a row, when the last id is unknown


class _Damaged(sqlite3.DatabaseError):
    """A record whose body does not match its checksum: SQLite reads a page past the end of a
    file cut short as zeros, without an error."""

    sqlite_errorcode = sqlite3.SQLITE_CORRUPT


def _corrupt(exc: sqlite3.Error) -> bool:
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT


def _intact(body: bytes, crc: int | None) -> bool:
    return crc is None or zlib.crc32(body) == crc


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
                self._db = self._connect(self._path)
            except sqlite3.DatabaseError as exc:
                if not _corrupt(exc):
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

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # a spooled record is acknowledged data
            db.executescript(_SCHEMA)
            if "crc" not in {row[1] for row in db.execute("PRAGMA table_info(records)")}:
                db.execute("ALTER TABLE records ADD COLUMN crc INTEGER")
            # Walks the records' b-tree: a file cut short fails here, at open, not mid-drain.
            db.execute("SELECT count(*) FROM records").fetchone()
        except sqlite3.Error:
            db.close()
            raise
        return db

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
                            and _corrupt(exc):
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
            self._adjust(db, sum(len(b) for b, _ in records), sum(n for _, n in records))
            dropped = self._trim(db)
            db.execute("COMMIT")
            return dropped

        dropped = self._guarded("write", put)
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
        def peek(db: sqlite3.Connection) -> list[Record]:
            rows = db.execute("SELECT id, items, body, crc FROM records ORDER BY id LIMIT ?",
                              (limit,)).fetchall()
            if not all(_intact(r[2], r[3]) for r in rows):
                raise _Damaged("a spooled record does not match its checksum")
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
            self._adjust(db, -int(nbytes), -int(items))
            if skipped:
                db.execute("UPDATE meta SET value = value + ? WHERE key = 'skipped_records'",
                           (len(ids),))
            db.execute("COMMIT")

        self._guarded("update", remove)

    def depth(self) -> Depth:
        def depth(db: sqlite3.Connection) -> Depth:
            records = int(db.execute("SELECT count(*) FROM records").fetchone()[0])
            return Depth(records, self._meta(db, "items"), self._meta(db, "bytes"))
        return self._guarded("read", depth)

    @property
    def dropped(self) -> int:
        """Items dropped for room since the spool was created (persists across restarts)."""
        return self._guarded("read", lambda db: self._meta(db, "dropped_items"))

    @property
    def skipped(self) -> int:
        """Records found unreadable (a damaged file) and skipped, since the spool was
        created (persists across restarts, as far as the damage left the count readable)."""
        return self._guarded("read", lambda db: self._meta(db, "skipped_records"))

    # -- salvage ---------------------------------------------------------------------------
    def _salvage(self, why: sqlite3.Error) -> None:
        """Replace a corrupt database file by a fresh one holding every record that still
        reads; the others are skipped and counted. Called with the lock held (or in `open`).

        Streams record by record into `<name>.db.salvage` (a spool can be larger than
        memory), then renames it over the damaged file, which is deleted: what it still held
        is what could not be read, and it would take disk space the spool needs."""
        log.error("spool file is damaged (%s); salvaging what still reads", why,
                  extra={"spool": str(self.directory)})
        if self._db is not None:
            self._db.close()
            self._db = None
        fresh_path = self._path.with_name(self._path.name + ".salvage")
        for stale in (fresh_path, Path(f"{fresh_path}-wal"), Path(f"{fresh_path}-shm")):
            stale.unlink(missing_ok=True)
        old = sqlite3.connect(f"file:{self._path}?mode=ro", uri=True, isolation_level=None)
        # A file shorter than its header says is refused as corrupt before anything is read,
        # unless the schema is "writable" (only read here): the pages it still has can be.
        old.execute("PRAGMA writable_schema=ON")
        try:
            fresh = self._connect(fresh_path)
            try:
                kept, skipped = self._copy_readable(old, fresh)
            finally:
                fresh.close()
        finally:
            old.close()
        os.replace(fresh_path, self._path)
        for leftover in ("-wal", "-shm"):
            Path(f"{self._path}{leftover}").unlink(missing_ok=True)
            Path(f"{fresh_path}{leftover}").unlink(missing_ok=True)
        self._db = self._connect(self._path)
        log.warning("spool salvaged: %d records kept, %s unreadable records skipped",
                    kept, "an unknown number of" if skipped is None else skipped,
                    extra={"spool": str(self.directory), "kept": kept,
                           "skipped_records": skipped})

    def _copy_readable(self, old: sqlite3.Connection, fresh: sqlite3.Connection
                       ) -> tuple[int, int | None]:
        """Copy the records of `old` that read into `fresh`: (kept, skipped), skipped None
        when the damage hides how many records there were."""
        def meta(key: str) -> int:
            try:
                return self._meta(old, key)
            except (sqlite3.Error, TypeError):
                return 0

        last_id: int | None
        try:
            row = old.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'"
                              ).fetchone()
            last_id = int(row[0]) if row else 0
        except sqlite3.Error:
            last_id = None
        kept = skipped = 0
        fresh.execute("BEGIN IMMEDIATE")
        try:
            crc = "crc" if any(row[1] == "crc" for row in old.execute(
                "PRAGMA table_info(records)")) else "NULL"
        except sqlite3.Error:
            crc = "NULL"
        for rid, items, body in _readable(old, last_id, crc):
            if body is None:
                skipped += 1
                continue
            fresh.execute("INSERT INTO records (id, items, body, crc) VALUES (?, ?, ?, ?)",
                          (rid, items, body, zlib.crc32(body)))
            self._adjust(fresh, len(body), items)
            kept += 1
        fresh.execute("UPDATE meta SET value = ? WHERE key = 'dropped_items'",
                      (meta("dropped_items"),))
        fresh.execute("UPDATE meta SET value = ? WHERE key = 'skipped_records'",
                      (meta("skipped_records") + skipped,))
        fresh.execute("COMMIT")
        return kept, skipped if last_id is not None else None


def _readable(db: sqlite3.Connection, last_id: int | None, crc: str
              ) -> Iterator[tuple[int, int, bytes | None]]:
    """(id, items, body) of each record of a damaged database, oldest first; body None for a
    record whose row is there but does not read or does not match its checksum (`crc`: the
    column, or NULL in an old spool). An ordered scan goes as far as it can; past the first
    damage, ids are looked up one by one up to the last id handed out (or, when
    even that is unreadable, until `_SALVAGE_GIVE_UP` ids in a row yield nothing; unreadable
    ids are then not reported, as nothing tells them from ids never used)."""
    after = 0
    try:
        for rid, items, body, check in db.execute(
                f"SELECT id, items, body, {crc} FROM records ORDER BY id"):
            after = int(rid)
            yield after, int(items), bytes(body) if _intact(body, check) else None
        return
    except sqlite3.Error:
        pass
    misses, rid = 0, after
    while (rid < last_id) if last_id is not None else (misses < _SALVAGE_GIVE_UP):
        rid += 1
        try:
            row = db.execute(f"SELECT items, body, {crc} FROM records WHERE id = ?",
                             (rid,)).fetchone()
        except sqlite3.Error:
            misses += 1
            if last_id is not None:
                yield rid, 0, None
            continue
        if row is None:
            misses += 1
            continue
        misses = 0
        yield rid, int(row[0]), bytes(row[1]) if _intact(row[1], row[2]) else None
