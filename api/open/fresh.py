"""Answers of the open interfaces remembered per scope and renewed behind the requests.

The SensorThings model and the inventory's device list read the whole fleet's last seen
from the store (100-150 ms for a thousand devices over a month, most of it InfluxDB's), and
an open client pages through them or asks again within seconds. Each answer is built on
first use, then returned at once; once older than `TTL_S` the next request starts a rebuild
in the background and still gets the last answer (stale-while-revalidate, RFC 5861's idea):
a request never waits for a rebuild, new devices show within seconds, and a failed rebuild
keeps the last answer. (`cachetools`' TTL caches expire rather than renew and have no
asyncio rebuild, hence this small class.)
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
TTL_S = 15.0
V = TypeVar("V")


class Fresh(Generic[V]):
    def __init__(self, what: str, *, ttl_s: float = TTL_S, size: int = 64) -> None:
        self.what, self.ttl_s, self.size = what, ttl_s, size
        self._known: dict[Hashable, tuple[float, V]] = {}
        self._building: dict[Hashable, asyncio.Task[V]] = {}

    async def get(self, key: Hashable, build: Callable[[], Awaitable[V]]) -> V:
        known = self._known.get(key)
        if known is not None and time.monotonic() - known[0] <= self.ttl_s:
            return known[1]
        task = self._building.get(key)
        if task is None:
            task = self._building[key] = asyncio.create_task(self._build(key, build))
            task.add_done_callback(lambda t: t.cancelled() or t.exception())  # logged there
        return known[1] if known is not None else await asyncio.shield(task)

    async def _build(self, key: Hashable, build: Callable[[], Awaitable[V]]) -> V:
        try:
            began = time.monotonic()
            value = await build()
            if len(self._known) >= self.size and key not in self._known:
                self._known.clear()
            self._known[key] = (began, value)
            return value
        except Exception:
            log.exception("%s of %r not rebuilt (the last one is kept)", self.what, key)
            raise
        finally:
            self._building.pop(key, None)
