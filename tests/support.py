"""Test helpers shared by the suites: polling instead of sleeping.

The contract of a check, for `eventually` and `wait_until`: it returns its evidence, a truthy
value, once the condition holds (the helper returns that value), and until then it raises
AssertionError (its message is kept for the failure) or returns a falsy value. A check that
only asserts must still end with `return <what it saw>`: `None` never counts as success, so a
check that forgot its assertion, or its `return`, fails at the deadline instead of passing.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from ingest.stores import open_reader
from ingest.stores.base import ALL_TIME, Aggregate, Reader, Stat, Window

T = TypeVar("T")


def _verdict(result: object) -> AssertionError | None:
    """None when `result` is the evidence that the condition holds, else why not."""
    if result is None:
        return AssertionError("check returned None: a check must return a truthy value once "
                              "the condition holds (assert, then return what it saw)")
    if not result:
        return AssertionError(f"check returned {result!r}")
    return None


def _timed_out(timeout: float, error: AssertionError) -> AssertionError:
    return AssertionError(f"not true after {timeout}s: {error}")


async def eventually(check: Callable[[], Awaitable[T] | T], timeout: float = 10.0,  # noqa: ASYNC109
                     interval: float = 0.05) -> T:
    """Call `check` (sync or async) until it returns a truthy value, and return that value; fail
    at the deadline with its last error: the test waits for a condition, never a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            error = _verdict(result)
            if error is None:
                return result  # type: ignore[return-value]
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise _timed_out(timeout, error) from error
        await asyncio.sleep(interval)


def wait_until(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """The synchronous twin of `eventually`, for tests that drive subprocesses."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if inspect.isawaitable(result):  # never true by accident: a coroutine is truthy
                if inspect.iscoroutine(result):
                    result.close()
                raise TypeError("wait_until got an async check: use `await eventually(...)`")
            error = _verdict(result)
            if error is None:
                return result
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise _timed_out(timeout, error) from error
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
