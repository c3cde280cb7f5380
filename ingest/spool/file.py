"""The spool's SQLite file: its schema, how it is opened, and how damage is recognised.

Each record carries a CRC-32 of its body: SQLite reads the pages past the end of a file cut
short as zeros, without an error, so only the checksum tells such a record from a real one.
"""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

SCHEMA = """
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


class Damaged(sqlite3.DatabaseError):
    """A record whose body does not match its checksum: SQLite reads a page past the end of a
    file cut short as zeros, without an error."""

    sqlite_errorcode = sqlite3.SQLITE_CORRUPT


def corrupt(exc: sqlite3.Error) -> bool:
    """Whether SQLite says the file is damaged (as opposed to full, read-only or locked)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _CORRUPT


def intact(body: bytes, crc: int | None) -> bool:
    return crc is None or zlib.crc32(body) == crc


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) a spool file in WAL mode with every write synced; raises what SQLite
    raises, a corrupt file included (callers salvage it)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a spooled record is acknowledged data
        db.executescript(SCHEMA)
        if "crc" not in {row[1] for row in db.execute("PRAGMA table_info(records)")}:
            db.execute("ALTER TABLE records ADD COLUMN crc INTEGER")
        # Walks the records' b-tree: a file cut short fails here, at open, not mid-drain.
        db.execute("SELECT count(*) FROM records").fetchone()
    except sqlite3.Error:
        db.close()
        raise
    return db


def meta(db: sqlite3.Connection, key: str) -> int:
    return int(db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])


def adjust(db: sqlite3.Connection, nbytes: int, items: int) -> None:
    """Keep the running totals of bytes and items in step with a change of records."""
    db.execute("UPDATE meta SET value = value + ? WHERE key = 'bytes'", (nbytes,))
    db.execute("UPDATE meta SET value = value + ? WHERE key = 'items'", (items,))
