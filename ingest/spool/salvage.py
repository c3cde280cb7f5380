"""Salvage of a damaged spool file: the records that still read are copied into a fresh
file, which replaces the damaged one; the others are skipped and counted."""

from __future__ import annotations

import logging
import os
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path

from ingest.spool.file import adjust, connect, intact, meta

log = logging.getLogger(__name__)
_GIVE_UP = 10_000  # unreadable or absent ids in a row, when the last id is unknown


def salvage(path: Path, why: sqlite3.Error, *, spool: str) -> sqlite3.Connection:
    """Replace the corrupt database file `path` by a fresh one holding every record that still
    reads, and return a connection to it; the caller has closed its own connection.

    Streams record by record into `<name>.db.salvage` (a spool can be larger than memory),
    then renames it over the damaged file, which is deleted: what it still held is what could
    not be read, and it would take disk space the spool needs."""
    log.error("spool file is damaged (%s); salvaging what still reads", why,
              extra={"spool": spool})
    fresh_path = path.with_name(path.name + ".salvage")
    for stale in (fresh_path, Path(f"{fresh_path}-wal"), Path(f"{fresh_path}-shm")):
        stale.unlink(missing_ok=True)
    old = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    # A file shorter than its header says is refused as corrupt before anything is read,
    # unless the schema is "writable" (only read here): the pages it still has can be.
    old.execute("PRAGMA writable_schema=ON")
    try:
        fresh = connect(fresh_path)
        try:
            kept, skipped = _copy_readable(old, fresh)
        finally:
            fresh.close()
    finally:
        old.close()
    os.replace(fresh_path, path)
    for leftover in ("-wal", "-shm"):
        Path(f"{path}{leftover}").unlink(missing_ok=True)
        Path(f"{fresh_path}{leftover}").unlink(missing_ok=True)
    log.warning("spool salvaged: %d records kept, %s unreadable records skipped",
                kept, "an unknown number of" if skipped is None else skipped,
                extra={"spool": spool, "kept": kept, "skipped_records": skipped})
    return connect(path)


def _copy_readable(old: sqlite3.Connection, fresh: sqlite3.Connection
                   ) -> tuple[int, int | None]:
    """Copy the records of `old` that read into `fresh`: (kept, skipped), skipped None
    when the damage hides how many records there were."""
    def old_meta(key: str) -> int:
        try:
            return meta(old, key)
        except (sqlite3.Error, TypeError):
            return 0

    last_id: int | None
    try:
        row = old.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
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
        adjust(fresh, len(body), items)
        kept += 1
    fresh.execute("UPDATE meta SET value = ? WHERE key = 'dropped_items'",
                  (old_meta("dropped_items"),))
    fresh.execute("UPDATE meta SET value = ? WHERE key = 'skipped_records'",
                  (old_meta("skipped_records") + skipped,))
    fresh.execute("COMMIT")
    return kept, skipped if last_id is not None else None


def _readable(db: sqlite3.Connection, last_id: int | None, crc: str
              ) -> Iterator[tuple[int, int, bytes | None]]:
    """(id, items, body) of each record of a damaged database, oldest first; body None for a
    record whose row is there but does not read or does not match its checksum (`crc`: the
    column, or NULL in an old spool). An ordered scan goes as far as it can; past the first
    damage, ids are looked up one by one up to the last id handed out (or, when
    even that is unreadable, until `_GIVE_UP` ids in a row yield nothing; unreadable
    ids are then not reported, as nothing tells them from ids never used)."""
    after = 0
    try:
        for rid, items, body, check in db.execute(
                f"SELECT id, items, body, {crc} FROM records ORDER BY id"):
            after = int(rid)
            yield after, int(items), bytes(body) if intact(body, check) else None
        return
    except sqlite3.Error:
        pass
    misses, rid = 0, after
    while (rid < last_id) if last_id is not None else (misses < _GIVE_UP):
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
        yield rid, int(row[0]), bytes(row[1]) if intact(row[1], row[2]) else None
