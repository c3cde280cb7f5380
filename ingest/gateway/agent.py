"""The gateway agent: the reference software for the Pi at a pilot site.

Readings from local sources (the simulators, handed in by the composition root; the site
listener of `site.py`, that sensors on the site network publish to) are stamped with device
time and put in the on-disk spool first; a forwarder publishes the spool oldest-first to the
central broker with QoS 1 and removes a record only once the broker acknowledged it. So the
uplink can come and go, the process can lose power, and nothing accepted is lost; memory does
not grow with the backlog (it is on disk), and when backlogged, records of one topic travel
together as JSON arrays. A spool disk that fails (full, read-only) holds intake instead: what
the disk did not take stays unacknowledged at the site listener, and the simulated sources
wait, until it does (logged once when it fails and once when it is back); the forwarder
keeps sending what it can read. The agent announces itself with a retained `online` status, a
retained last will `offline`, and heartbeats carrying its spool depth.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ingest import topics
from ingest.gateway.site import Uplink, listen
from ingest.mqtt import MqttOptions, MqttTimeout, Publisher, Will
from ingest.spool import Depth, Record, Spool, SpoolError, SpoolLocked

log = logging.getLogger(__name__)

UplinkSource = Callable[[], AsyncIterator[Uplink]]

EXIT_DRAIN_TIMEOUT = 3


@dataclass(frozen=True, slots=True)
class GatewayOptions:
    pilot: str
    gateway: str
    upstream: MqttOptions
    spool_dir: Path
    spool_max_bytes: int = 256 << 20
    heartbeat_s: float = 30.0
    max_batch: int = 200
    listen_port: int | None = None
    listen_host: str = "127.0.0.1"  # the site listener's address (0.0.0.0: every interface)
    listen_password_file: Path | None = None  # Mosquitto's format; None: anonymous
    drain_timeout_s: float | None = None
    flush_interval_s: float = 0.05
    metrics_port: int = 0  # /metrics, /healthz, /readyz; 0: off
    metrics_host: str = "0.0.0.0"


@dataclass(slots=True)
class GatewayStats:
    generated: int = 0  # readings and events the simulated sources produced
    accepted: int = 0  # messages durably in the spool
    delivered: int = 0  # messages the central broker acknowledged
    dropped: int = 0  # messages the full spool dropped (oldest first)
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self, spool_depth: int) -> dict[str, Any]:
        return {"generated": self.generated, "accepted": self.accepted,
                "delivered": self.delivered, "dropped": self.dropped,
                "spool_depth": spool_depth, **self.extra}


def _record(topic: str, payload: bytes) -> bytes:
    return topic.encode() + b"\n" + payload


def _split(record: Record) -> tuple[str, bytes]:
    topic, _, payload = record.body.partition(b"\n")
    return topic.decode(), payload


def batch_messages(records: list[Record]) -> list[tuple[str, bytes, list[int]]]:
    """Group records by topic, in order: (topic, payload, record ids). Several
    records of one topic become one JSON array (their elements concatenated, order kept)."""
    groups: dict[str, list[tuple[Record, bytes]]] = {}
    for rec in records:
        topic, payload = _split(rec)
        groups.setdefault(topic, []).append((rec, payload))
    out = []
    for topic, group in groups.items():
        if len(group) == 1:
            rec, payload = group[0]
            out.append((topic, payload, [rec.id]))
            continue
        elements: list[Any] = []
        merged: list[Record] = []
        for rec, payload in group:
            try:
                doc = orjson.loads(payload)
            except orjson.JSONDecodeError:  # sent alone, as it came: the collector judges it
                out.append((topic, payload, [rec.id]))
                continue
            elements.extend(doc if isinstance(doc, list) else [doc])
            merged.append(rec)
        if merged:
            out.append((topic, orjson.dumps(elements), [r.id for r in merged]))
    return out


class GatewayAgent:
    def __init__(self, options: GatewayOptions, sources: list[UplinkSource] | None = None) -> None:
        self.options = options
        self.sources = sources or []
        self.stats = GatewayStats()
        self.spool = Spool(options.spool_dir, max_bytes=options.spool_max_bytes,
                           name="gateway")
        self._buffer: list[tuple[bytes, int]] = []
        self._status_topic = topics.build(
            topics.Identity(options.pilot, options.gateway, options.gateway),
            topics.Channel.STATUS)
        will = Will(self._status_topic, orjson.dumps({"state": "offline"}))
        self.upstream = Publisher(options.upstream, will, on_connect=self._announce)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._putting = asyncio.Lock()  # one put at a time, so a retried one keeps its place
        self._closing = False  # shutting down: a put the disk refuses is not retried
        self._spool_failing = False
        self._spool_error = ""
        self.spool_depth = 0  # what stays spooled when `run` returns

    def topic(self, device: str, channel: str) -> str:
        return topics.build(topics.Identity(self.options.pilot, self.options.gateway, device),
                            topics.Channel(channel))

    def stop(self) -> None:
        self._stopping.set()

    async def run(self, duration_s: float | None = None) -> int:
        """Run until stopped, or for `duration_s` and then until everything accepted is
        delivered (exit 0) or the drain timeout expires (exit 3, the rest stays spooled)."""
        try:
            await asyncio.to_thread(self.spool.open)
        except SpoolLocked:
            raise
        except SpoolError as exc:  # the disk may come back: `_put` opens it then
            self._spool_failed(exc)
        try:
            async with self.upstream, asyncio.TaskGroup() as tg:
                helpers = [tg.create_task(self._forward(), name="forward"),
                           tg.create_task(self._heartbeat(), name="heartbeat"),
                           tg.create_task(self._flush_loop(), name="spool-flush")]
                if self.options.metrics_port:
                    helpers.append(tg.create_task(self._serve_health(), name="health-http"))
                if self.options.listen_port:
                    helpers.append(tg.create_task(
                        listen(self.options.listen_port, f"{self.options.gateway}-site",
                               self._take_site, host=self.options.listen_host,
                               password_file=self.options.listen_password_file),
                        name="site-listener"))
                code = await self._produce(tg, duration_s)
                for task in helpers:
                    task.cancel()
                self._closing = True
                await self._flush()
                await self._status("offline")  # a clean stop says so; a power cut, the will
            depth = await self._depth()
            self.spool_depth = depth.items if depth else 0
        finally:
            await asyncio.to_thread(self.spool.close)
        return code

    def readiness(self) -> tuple[bool, dict[str, object]]:
        """Ready: the spool takes writes and the uplink is connected (`/readyz`)."""
        detail: dict[str, object] = {
            "uplink_connected": self.upstream.connected, "spool_ok": not self._spool_failing,
            "accepted": self.stats.accepted, "delivered": self.stats.delivered,
            "dropped": self.stats.dropped}
        if self._spool_failing:
            detail["spool_error"] = self._spool_error
        return self.upstream.connected and not self._spool_failing, detail

    async def _serve_health(self) -> None:
        from ingest.collector.metrics import serve  # only when asked: a Pi keeps its memory
        from ingest.gateway.health import health_app

        await serve(health_app(self.readiness), self.options.metrics_host,
                    self.options.metrics_port, setting="CITYPILOT_GATEWAY_METRICS_PORT")

    async def _produce(self, tg: asyncio.TaskGroup, duration_s: float | None) -> int:
        feeds = [tg.create_task(self._intake(src), name=f"source-{i}")
                 for i, src in enumerate(self.sources)]
        stop = asyncio.create_task(self._stopping.wait())
        if duration_s is None:
            await stop
        else:
            await asyncio.wait([stop], timeout=duration_s)
        for feed in feeds:
            feed.cancel()
        await asyncio.gather(*feeds, return_exceptions=True)
        await self._flush()
        if duration_s is None or self._stopping.is_set():
            stop.cancel()
            return 0
        code = await self._drain(self.options.drain_timeout_s)
        stop.cancel()
        return code

    async def _drain(self, timeout_s: float | None) -> int:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while (depth := await self._depth()) is None or depth.records:
            if self._stopping.is_set():
                return 0
            if deadline is not None and time.monotonic() > deadline:
                log.warning("drain timeout: %s messages stay spooled",
                            depth.items if depth else "an unknown number of")
                return EXIT_DRAIN_TIMEOUT
            await asyncio.sleep(0.05)
        return 0

    async def _intake(self, source: UplinkSource) -> None:
        async for device, channel, payload in source():
            self._buffer.append((_record(self.topic(device, channel), payload), 1))
            self.stats.generated += 1
            if len(self._buffer) >= 500:
                await self._flush()

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.flush_interval_s)
            await self._flush()

    async def _flush(self) -> None:
        async with self._putting:
            if not self._buffer:
                return
            batch, self._buffer = self._buffer, []
            if not await self._put(batch):
                log.error("stopping with %d readings the spool never took: lost", len(batch))

    async def _put(self, records: list[tuple[bytes, int]]) -> bool:
        """Spool records durably; while the disk refuses, hold them and try again each
        second. False only when the agent stops first."""
        while True:
            try:
                if self._spool_failing:
                    await asyncio.to_thread(self.spool.check)
                dropped = await asyncio.to_thread(self.spool.put_many, records)
            except SpoolError as exc:
                self._spool_failed(exc)
                if self._closing or self._stopping.is_set():
                    return False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        await self._stopping.wait()
                continue
            if self._spool_failing:
                log.info("spool usable again: %s", self.options.spool_dir)
                self._spool_failing, self._spool_error = False, ""
            self.stats.dropped += dropped
            self.stats.accepted += len(records)
            self._wake.set()
            return True

    def _spool_failed(self, exc: SpoolError) -> None:
        self._spool_error = str(exc)
        if not self._spool_failing:
            log.error("spool unusable: %s; holding intake until it takes writes again (free "
                      "the disk, or make it writable)", exc)
        self._spool_failing = True

    async def _depth(self) -> Depth | None:
        try:
            return await asyncio.to_thread(self.spool.depth)
        except SpoolError:
            return None

    async def _forward(self) -> None:
        while True:
            if not self.upstream.connected:
                with contextlib.suppress(MqttTimeout):
                    await self.upstream.wait_connected(1.0)
                continue
            try:
                records = await asyncio.to_thread(self.spool.peek, self.options.max_batch)
            except SpoolError as exc:
                log.debug("spool unreadable: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if not records:
                self._wake.clear()
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation
                # that races with the event, and this loop would never end.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await self._wake.wait()
                continue
            try:
                await self._send(records)
            except SpoolError as exc:  # delivered, not removed: sent again (harmless)
                log.debug("cannot remove delivered records: %s", exc)
                await asyncio.sleep(1.0)

    async def _send(self, records: list[Record]) -> None:
        messages = batch_messages(records)
        results = await asyncio.gather(
            *(self.upstream.publish(topic, payload) for topic, payload, _ in messages),
            return_exceptions=True)
        done = {i for (_, _, ids), r in zip(messages, results, strict=True)
                if not isinstance(r, BaseException) for i in ids}
        # Records are removed oldest-first only up to the first failure, so order is kept;
        # acknowledged ones after it are sent again, so only the removed ones count.
        ok_prefix = []
        for rec in records:
            if rec.id not in done:
                break
            ok_prefix.append(rec.id)
        await asyncio.to_thread(self.spool.remove, ok_prefix)
        self.stats.delivered += sum(rec.items for rec in records[:len(ok_prefix)])
        if len(ok_prefix) < len(records):
            await asyncio.sleep(0.2)  # the connection dropped: let the reconnect happen

    async def _status(self, state: str) -> None:
        doc: dict[str, object] = {"ts": time.time_ns() // 1_000_000, "state": state}
        if (depth := await self._depth()) is not None:
            doc["spool_depth"] = depth.items
        body = orjson.dumps(doc)
        with contextlib.suppress(ConnectionError, TimeoutError):
            async with asyncio.timeout(5.0):
                await self.upstream.publish(self._status_topic, body, retain=True)

    def _announce(self) -> None:
        asyncio.get_running_loop().create_task(self._status("online"), name="announce")

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.options.heartbeat_s)
            await self._status("online")

    async def _take_site(self, readings: list[Uplink]) -> bool:
        """Spool what the site listener received (stamped), before it is acknowledged;
        False: stopped before the spool took it (not to be acknowledged)."""
        records = [(_record(self.topic(device, channel), payload), 1)
                   for device, channel, payload in readings]
        async with self._putting:
            return await self._put(records)
