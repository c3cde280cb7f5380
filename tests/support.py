"""Test helpers shared by the suites: polling instead of sleeping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ingest.stores import open_reader
from ingest.stores.base import ALL_TIME, Aggregate, Reader, Stat, Window

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T] | T], timeout: float = 10.0,  # noqa: ASYNC109
                     interval: float = 0.05) -> T:
    """Call `check` until it returns without AssertionError (and truthy), or fail at the deadline
    with its last error: the test waits for a condition, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result is None or result:
                return result  # type: ignore[return-value]
            error: BaseException = AssertionError(f"check returned {result!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {error}") from error
        await asyncio.sleep(interval)


def wait_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """The synchronous twin of `eventually`, for tests that drive subprocesses."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result is None or result:
                return result
            error: BaseException = AssertionError(f"check returned {result!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"not true after {timeout}s: {error}") from error
        time.sleep(interval)


async def count(reader: Reader, measurement: str, field: str, *, window: Window = ALL_TIME,
                **tags: str) -> int:
    """How many points of `measurement` carry `field` in `window`, with these tag values:
    what a user counts with `SELECT count(field)`."""
    where = tuple((key, (value,)) for key, value in tags.items())
    rows = await reader.aggregate(Aggregate((measurement,), field, Stat.COUNT, (window,),
                                            where=where))
    return int(rows[0].value) if rows else 0


async def stored_count(url: str, measurement: str, field: str, **tags: str) -> int:
    """`count` through a reader of its own on the store at `url`."""
    async with open_reader(url) as reader:
        return await count(reader, measurement, field, **tags)
