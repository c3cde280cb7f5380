"""No httpx or sqlite3 exception leaves `stores/`: each library's every exception class is
mapped to one of the two kinds (as httpx's own tests check that every httpcore exception is
mapped), and real faults (a closed port, a file that is no database) come out as them."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from ingest.model import Point
from ingest.stores import open_reader, open_store
from ingest.stores.base import (
    ALL_TIME,
    Aggregate,
    Stat,
    StoreError,
    StoreRejected,
    StoreUnavailable,
)
from ingest.stores.influx import InfluxReader
from ingest.stores.influx.http import HTTPX_ERRORS, Transient
from ingest.stores.influx.http import translate as translate_httpx
from ingest.stores.sqlite.connection import SQLITE_ERRORS
from ingest.stores.sqlite.connection import translate as translate_sqlite

POINT = Point("air_quality", (("pilot", "p1"), ("gateway", "g1"), ("device", "d1")),
              {"pm25": 1.0}, 1_700_000_000 * 10**9)
QUERY = Aggregate(("air_quality",), "pm25", Stat.COUNT, (ALL_TIME,))


def _classes(module: object, base: type | tuple[type, ...]) -> list[type[Exception]]:
    return sorted({c for c in vars(module).values()
                   if isinstance(c, type) and issubclass(c, base)}, key=lambda c: c.__name__)


def _instance(cls: type[Exception]) -> Exception:
    request = httpx.Request("GET", "http://127.0.0.1/")
    for args, kwargs in (((), {}), (("boom",), {}), (("boom",), {"request": request}),
                         (("boom",), {"request": request,
                                      "response": httpx.Response(500, request=request)})):
        try:
            return cls(*args, **kwargs)
        except TypeError:
            continue
    raise AssertionError(f"cannot build {cls.__name__}")


HTTPX = _classes(httpx, Exception)
SQLITE = _classes(sqlite3, (sqlite3.Error, sqlite3.Warning))


def test_the_enumerations_found_the_libraries_exceptions() -> None:
    names = {c.__name__ for c in HTTPX}
    assert {"ConnectError", "ReadTimeout", "InvalidURL", "StreamClosed",
            "HTTPStatusError"} <= names
    assert {"OperationalError", "DatabaseError", "IntegrityError", "Warning"} <= {
        c.__name__ for c in SQLITE}


@pytest.mark.parametrize("cls", HTTPX, ids=lambda c: c.__name__)
def test_every_httpx_exception_is_mapped(cls: type[Exception]) -> None:
    assert issubclass(cls, HTTPX_ERRORS), f"{cls.__name__} would escape the InfluxDB store"
    mapped = translate_httpx(_instance(cls), "127.0.0.1:1/db", 1.0)
    # Transient is retried inside the store and leaves it as StoreUnavailable.
    assert isinstance(mapped, Transient | StoreUnavailable | StoreRejected)
    if isinstance(cls, type) and issubclass(cls, httpx.TransportError):
        assert isinstance(mapped, Transient)  # a network fault is worth waiting for


@pytest.mark.parametrize("cls", SQLITE, ids=lambda c: c.__name__)
def test_every_sqlite3_exception_is_mapped(cls: type[Exception]) -> None:
    assert issubclass(cls, SQLITE_ERRORS), f"{cls.__name__} would escape the SQLite store"
    mapped = translate_sqlite(cls("boom"))  # type: ignore[arg-type]
    assert type(mapped) in (StoreUnavailable, StoreRejected)
    if cls in (sqlite3.OperationalError, sqlite3.DatabaseError):
        assert isinstance(mapped, StoreUnavailable)  # busy, locked, I/O: the data waits


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_closed_port_is_unavailable_for_every_call() -> None:
    url = f"influxdb://127.0.0.1:{_closed_port()}/nowhere"
    async with open_store(url, deadline_s=0.2) as store, \
            open_reader(url, deadline_s=0.2) as reader:
        calls: list[Callable[[], Awaitable[object]]] = [
            store.ping, lambda: store.write([POINT]), reader.ping,
            lambda: reader.aggregate(QUERY), lambda: reader.latest("air_quality"),
            reader.dead_letters, reader.measurements,
            lambda: reader.last_seen(["air_quality"], "pm25")]
        assert isinstance(reader, InfluxReader)
        calls.append(lambda: reader.influxql('SELECT * FROM "air_quality"'))
        for call in calls:
            with pytest.raises(StoreUnavailable, match="cannot reach InfluxDB"):
                await call()


async def test_a_file_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    path.write_bytes(b"this is not an SQLite database, and it is long enough to tell" * 20)
    for opener in (open_store, open_reader):
        with pytest.raises(StoreRejected, match="not a database"):
            async with opener(f"sqlite:///{path}"):
                pass


async def test_a_writer_and_a_reader_opening_a_new_file_at_once_both_open(
        tmp_path: Path) -> None:
    """The collector and the API (or a test's reader) starting together on a fresh file:
    both set it up, and the loser's switch to WAL answers SQLITE_BUSY at once (CI saw it)."""
    import asyncio
    from contextlib import AsyncExitStack

    for round_ in range(40):
        url = f"sqlite:///{tmp_path / f'store{round_}.db'}"
        async with AsyncExitStack() as stack:
            store, reader = await asyncio.gather(
                stack.enter_async_context(open_store(url)),
                stack.enter_async_context(open_reader(url)))
            assert await store.write([POINT]) == []
            assert [r.value for r in await reader.aggregate(QUERY)] == [1.0]


async def test_a_database_corrupted_while_open_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    async with open_store(f"sqlite:///{path}") as store, \
            open_reader(f"sqlite:///{path}") as reader:
        assert await store.write([POINT]) == []
        for name in ("store.db", "store.db-wal", "store.db-shm"):  # as a disk fault would
            (tmp_path / name).write_bytes(b"\x00garbage" * 4096)
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: store.write([POINT]), lambda: reader.aggregate(QUERY),
            lambda: reader.latest("air_quality")]
        for call in calls:
            with pytest.raises(StoreError) as info:
                await call()
            assert type(info.value) in (StoreUnavailable, StoreRejected)
