"""The spool: FIFO, durable across reopen, bounded with counted drops, one owner at a time."""

from __future__ import annotations

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
