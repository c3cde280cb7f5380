"""The spool: FIFO, durable across reopen, bounded with counted drops, one owner at a time."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from ingest.spool import Spool, SpoolError


def test_fifo_and_remove(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for i in range(5):
            spool.put(f"r{i}".encode(), items=2)
        first = spool.peek(2)
        assert [r.body for r in first] == [b"r0", b"r1"]
        spool.remove([r.id for r in first])
        assert [r.body for r in spool.peek(10)] == [b"r2", b"r3", b"r4"]
        assert spool.depth().items == 6


def test_records_survive_reopen(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.put(b"kept", items=3)
    with Spool(tmp_path) as spool:
        assert [r.body for r in spool.peek(10)] == [b"kept"]
        assert spool.depth().items == 3


def test_bound_drops_oldest_and_counts(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=100) as spool:
        for i in range(10):
            spool.put(bytes([i]) * 30, items=1)
        bodies = [r.body[0] for r in spool.peek(100)]
        assert bodies == [7, 8, 9]
        assert spool.depth().bytes <= 100
        assert spool.dropped == 7
    with Spool(tmp_path, max_bytes=100) as spool:
        assert spool.dropped == 7


def test_oversized_record_is_kept_alone(tmp_path: Path) -> None:
    with Spool(tmp_path, max_bytes=10) as spool:
        spool.put(b"a" * 5)
        spool.put(b"b" * 50)
        assert [r.body for r in spool.peek(5)] == [b"b" * 50]


def test_second_owner_is_refused_until_first_closes(tmp_path: Path) -> None:
    first = Spool(tmp_path)
    first.open()
    with pytest.raises(SpoolError, match="in use by another running process"):
        Spool(tmp_path).open()
    first.close()
    with Spool(tmp_path) as again:
        assert again.depth().records == 0


def test_close_while_another_thread_writes_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """A `remove` left running by a cancelled `asyncio.to_thread` may race `close`.

    Before `close` took the spool's lock, this race crashed the interpreter (SIGSEGV inside
    sqlite3, seen in CI); now the late call either finishes first or raises `SpoolError`.
    """
    import threading

    for round_ in range(20):
        spool = Spool(tmp_path / str(round_))
        spool.open()
        spool.put_many([(b"x" * 64, 1)] * 200)
        outcomes: list[str] = []

        def churn(spool: Spool = spool, outcomes: list[str] = outcomes) -> None:
            try:
                while True:
                    records = spool.peek(5)
                    spool.put_many([(r.body, r.items) for r in records])
                    spool.remove([r.id for r in records])
            except SpoolError as exc:
                outcomes.append(str(exc))

        worker = threading.Thread(target=churn)
        worker.start()
        spool.close()
        worker.join(timeout=10)
        assert not worker.is_alive()
        assert outcomes == ["spool is not open"]


def _filled(directory: Path, n: int = 200) -> dict[int, bytes]:
    """A closed spool of `n` records of a few kB (ids 1..n, the first three removed)."""
    with Spool(directory) as spool:
        for i in range(n):
            spool.put(bytes([i % 251]) * (3000 + i * 37), items=10)
        spool.remove([1, 2, 3])
        return {r.id: r.body for r in spool.peek(n)}


@pytest.mark.parametrize("cut", [0.6, 0.95])
def test_a_file_cut_short_keeps_what_reads_and_counts_the_rest(
        tmp_path: Path, cut: float, caplog: pytest.LogCaptureFixture) -> None:
    before = _filled(tmp_path)
    db = tmp_path / "spool.db"
    os.truncate(db, int(db.stat().st_size * cut) + 123)  # mid-page, mid-record
    with Spool(tmp_path) as spool:  # no exception: salvaged
        kept = spool.peek(1000)
        assert kept, "the records before the cut still read"
        assert all(before[r.id] == r.body for r in kept), "what is kept is byte-exact"
        assert [r.id for r in kept] == sorted(r.id for r in kept)
        assert len(kept) + spool.skipped == len(before), "every record kept or counted"
        assert spool.skipped > 0
        assert spool.depth().records == len(kept)
        assert spool.depth().items == 10 * len(kept)
        spool.put(b"after", items=1)  # and the salvaged spool takes writes
        skipped = spool.skipped
    assert f"{skipped} unreadable records skipped" in caplog.text
    with Spool(tmp_path) as spool:
        assert spool.skipped == skipped, "the count survives a restart"
        assert spool.peek(1000)[-1].body == b"after"


def test_a_file_that_is_no_database_is_replaced_not_fatal(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _filled(tmp_path, 20)
    (tmp_path / "spool.db").write_bytes(b"\x00garbage" * 10)
    with Spool(tmp_path) as spool:
        assert spool.peek(10) == []
        spool.put(b"x")
    assert "an unknown number of unreadable records skipped" in caplog.text


def test_skipped_records_are_removed_and_counted(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        spool.put(b"bad", items=4)
        spool.put(b"good", items=1)
        spool.remove([spool.peek(1)[0].id], skipped=True)
        assert spool.skipped == 1
        assert spool.depth().items == 1


def test_check_opens_a_closed_spool_and_proves_it_writes(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s")
    with pytest.raises(SpoolError, match="not open"):
        spool.peek()
    spool.check()
    try:
        assert spool.peek() == []
    finally:
        spool.close()


def test_a_record_that_reads_wrong_is_found_by_its_checksum(tmp_path: Path) -> None:
    with Spool(tmp_path) as spool:
        for body in (b"first", b"second", b"third"):
            spool.put(body)
    with sqlite3.connect(tmp_path / "spool.db") as db:  # damage SQLite cannot see
        db.execute("UPDATE records SET body = zeroblob(6) WHERE id = 2")
    with Spool(tmp_path) as spool:
        assert [r.body for r in spool.peek(10)] == [b"first", b"third"]
        assert spool.skipped == 1


def test_a_spool_from_before_the_checksum_column_opens_and_keeps_its_records(
        tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "spool.db") as db:
        db.executescript("CREATE TABLE records (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                         "items INTEGER NOT NULL, body BLOB NOT NULL);"
                         "INSERT INTO records (items, body) VALUES (2, x'6f6c64');")
    with Spool(tmp_path) as spool:
        assert [r.body for r in spool.peek(10)] == [b"old"]
        spool.put(b"new")
        assert [r.body for r in spool.peek(10)] == [b"old", b"new"]
