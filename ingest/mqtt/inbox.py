"""The received side both subscribers share: `Message` (one PUBLISH as the collector sees
it) and `Inbox`, the arrival-ordered queue the collector takes its batches from.

Both subscribers put into an Inbox: the MQTT 5 stream subscriber from the event loop, the
paho one from paho's network thread (`call_in_loop` is that thread's only way into the loop).
The stream subscriber bounds its inbox (`room`): Mosquitto 2.0 keeps sending past our Receive
Maximum once part of the window is acknowledged (10 allowed, 5 acked at a time: 1,810
queued), so above it the subscriber stops reading and the broker keeps the rest.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_BYTES = 64 << 20  # payload bytes received and not yet taken, at most (about)


@dataclass(slots=True)
class Message:
    topic: str
    payload: bytes
    received_ns: int
    mid: int
    qos: int
    generation: int  # the connection it arrived on: acks of an older one are never sent


def call_in_loop(loop: asyncio.AbstractEventLoop | None, fn: Callable[[], object]) -> None:
    """Hand `fn` from paho's network thread to the event loop (dropped once it is closed)."""
    if loop is not None and not loop.is_closed():
        loop.call_soon_threadsafe(fn)


class Inbox:
    """Received messages waiting for the collector, in arrival order, with the batch-taking
    side both subscribers share. `put` runs in the event loop; paho's network thread uses
    `put_from_thread`, which wakes the loop only when a `take` is waiting for a first message
    (a cross-thread wake-up per message would cost more than the message)."""

    def __init__(self, high_water: int = 0, high_water_bytes: int = MAX_BYTES) -> None:
        self._queue: deque[Message] = deque()
        self._bytes = 0  # payload bytes queued, for the byte bound of a batch
        self._wake = asyncio.Event()
        self._armed = False
        self._interrupted = False
        # Backpressure for a subscriber that can stop reading (0: none): above either high
        # water it waits in `room()` until the queue is down to half of both.
        self._high, self._high_bytes = high_water, high_water_bytes
        self._room = asyncio.Event()
        self._room.set()

    def put(self, msg: Message) -> None:
        self._queue.append(msg)
        self._bytes += len(msg.payload)
        if self._armed:
            self._armed = False
            self._wake.set()

    def put_from_thread(self, msg: Message, loop: asyncio.AbstractEventLoop | None) -> None:
        self._queue.append(msg)
        self._bytes += len(msg.payload)  # a racy tally is fine: it only sizes batches
        if self._armed:
            self._armed = False
            call_in_loop(loop, self._wake.set)

    async def take(self, max_messages: int, max_wait_s: float,
                   max_bytes: int = 1 << 62) -> list[Message]:
        """Wait for at least one message, then up to `max_wait_s` for a full batch (by count
        or by payload bytes); empty-handed after `interrupt()`."""
        while not self._queue:
            if self._interrupted:
                return []
            self._armed = True
            if self._queue:
                break
            await self._wake.wait()
            self._wake.clear()
        deadline = time.monotonic() + max_wait_s
        # Polling a few ms while a batch fills is cheaper than a wake-up per message.
        while (len(self._queue) < max_messages and self._bytes < max_bytes  # noqa: ASYNC110
               and time.monotonic() < deadline):
            await asyncio.sleep(min(0.002, max_wait_s))
        return self.take_nowait(max_messages, max_bytes)

    def take_nowait(self, max_messages: int, max_bytes: int = 1 << 62) -> list[Message]:
        """Up to `max_messages` whose payloads stay within `max_bytes` (at least one)."""
        out: list[Message] = []
        size = 0
        queue = self._queue
        while queue and len(out) < max_messages:
            nbytes = len(queue[0].payload)
            if out and size + nbytes > max_bytes:
                break
            size += nbytes
            out.append(queue.popleft())
        self._bytes -= size
        if not self._room.is_set() and not self._above(2):
            self._room.set()
        return out

    def _above(self, divisor: int) -> bool:
        return bool((self._high and len(self._queue) >= self._high // divisor)
                    or (self._high_bytes and self._bytes >= self._high_bytes // divisor))

    async def room(self) -> bool:
        """Return at once while the queue is under its high water; else wait until the
        consumer has taken it down to half (True: it waited)."""
        if not self._above(1):
            return False
        self._room.clear()
        await self._room.wait()
        return True

    @property
    def full(self) -> bool:
        """Waiting in `room()` for the consumer: its reader has stopped reading."""
        return not self._room.is_set()

    def interrupt(self) -> None:
        """Make a waiting `take()` return (empty-handed if nothing arrived): shutdown."""
        self._interrupted = True
        self._wake.set()
        self._room.set()

    @property
    def backlog(self) -> int:
        return len(self._queue)
