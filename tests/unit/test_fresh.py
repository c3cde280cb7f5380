"""`api.open.fresh.Fresh`: answered at once, renewed behind the requests, never lost."""

from __future__ import annotations

import asyncio

import pytest

from api.open.fresh import Fresh


class Builds:
    def __init__(self) -> None:
        self.calls = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> int:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise RuntimeError("store down")
        return self.calls


async def test_built_once_for_concurrent_first_requests_then_remembered() -> None:
    fresh, build = Fresh[int]("thing", ttl_s=60), Builds()
    build.gate = asyncio.Event()
    waiting = [asyncio.create_task(fresh.get("k", build)) for _ in range(5)]
    await asyncio.sleep(0)
    build.gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5
    assert await fresh.get("k", build) == 1 and build.calls == 1
    assert await fresh.get("other", build) == 2  # each key its own answer


async def test_a_stale_answer_is_returned_while_the_rebuild_runs() -> None:
    fresh, build = Fresh[int]("thing", ttl_s=0.0), Builds()
    assert await fresh.get("k", build) == 1
    build.gate = asyncio.Event()
    assert await fresh.get("k", build) == 1  # stale, returned at once; rebuild started
    await asyncio.sleep(0)
    assert await fresh.get("k", build) == 1 and build.calls == 2  # one rebuild at a time
    build.gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    build.gate = None
    assert await fresh.get("k", build) == 2


async def test_a_failed_rebuild_keeps_the_last_answer_and_a_first_failure_raises(
        caplog: pytest.LogCaptureFixture) -> None:
    fresh, build = Fresh[int]("inventory", ttl_s=0.0), Builds()
    assert await fresh.get("k", build) == 1
    build.fail = True
    assert await fresh.get("k", build) == 1
    for _ in range(10):
        await asyncio.sleep(0)
    assert await fresh.get("k", build) == 1
    assert "inventory of 'k' not rebuilt" in caplog.text
    with pytest.raises(RuntimeError, match="store down"):
        await fresh.get("new", build)


async def test_bounded_the_oldest_keys_are_forgotten() -> None:
    fresh, build = Fresh[int]("thing", ttl_s=60, size=3), Builds()
    for key in range(10):
        await fresh.get(key, build)
    assert await fresh.get(9, build) == 10  # still known
    assert await fresh.get(0, build) == 11  # forgotten: built again
