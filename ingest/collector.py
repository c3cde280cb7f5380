"""The collector: MQTT in, store out, nothing acknowledged before it is durable.

Messages are taken in batches (by count and time), decoded, and written to the store; only
then are they acknowledged to the broker, in arrival order (the pattern of Telegraf's
mqtt_consumer `onMessage`/`onDelivered` with `max_undelivered_messages`). A bounded number of
batches is in flight, so decoding the next batch overlaps the store's write of the previous.
When the store is unavailable a batch goes to the on-disk spool instead (durable too, so it is
acknowledged), and a drain task replays the spool oldest-first once the store answers again,
while live traffic flows. Rejected messages become dead-letter points in the same store, and
so do points the store refuses (one by one, or a whole batch with StoreRejected). No store
error ends the collector: anything unexpected is logged and the batch spooled.

A disk that fails (full, read-only, gone) ends nothing either: a batch that neither the store
nor the spool takes stays unacknowledged (the broker keeps it and the messages after it, as
its in-flight window fills) and is tried again every `drain_interval_s`, `/readyz` answers 503
with the spool's error until the spool takes a write again, and a spooled record that does not
decode is skipped and counted. Stopping then leaves the held batches to the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import sqlite3
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from ingest import metrics as metrics_http
from ingest import topics
from ingest.decode import Decoder, Limits, Stateful
from ingest.decode.native import NativeDecoder
from ingest.model import (
    DEAD_LETTER_MEASUREMENT,
    Decoded,
    Point,
    Reason,
    Rejection,
    dead_letter,
)
from ingest.mqtt import Message, MqttOptions, Subscriber, topic_matches
from ingest.spool import Spool, SpoolError, SpoolLocked
from ingest.stores.base import RejectedPoint, Store, StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)
_MEASUREMENT = operator.attrgetter("measurement")


@dataclass(frozen=True, slots=True)
class Route:
    """A subscription filter and the decoder for what arrives on it."""

    filter: str
    decoder: Decoder


@dataclass(frozen=True, slots=True)
class Connection:
    """Another broker (a source's `mqtt_url`) and the routes subscribed on it."""

    mqtt: MqttOptions
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class CollectorOptions:
    mqtt: MqttOptions
    spool_dir: Path
    share_group: str | None = None
    spool_max_bytes: int = 1 << 30
    batch_max_messages: int = 2000
    batch_max_bytes: int = 1 << 20  # arrays of readings: bound a batch's points, not messages
    batch_interval_s: float = 0.02
    max_batches_in_flight: int = 2
    limits: Limits = field(default_factory=Limits)
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 0
    routes: tuple[Route, ...] = ()  # sources on the main broker, beside the native topics
    connections: tuple[Connection, ...] = ()  # sources on other brokers
    drain_interval_s: float = 1.0


@dataclass(slots=True)
class Stats:
    """Running totals, for the demo's live summary (Prometheus has the same figures)."""

    received: int = 0
    stored: int = 0
    spooled: int = 0
    dead_letters: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    by_reason: Counter[str] = field(default_factory=Counter)


class Waiting(StoreUnavailable):
    """Some points of a write wait for the store: their dead letters were refused too (e.g.
    max-series-per-database); the rest is stored or dead-lettered for good, so only these
    go to the spool (the whole batch again would store points already dead-lettered)."""

    def __init__(self, detail: str, points: list[Point]) -> None:
        super().__init__(detail)
        self.points = points


class Withheld(Exception):
    """A batch neither the store nor the spool took before the collector stopped: it is not
    acknowledged, so the broker delivers it again."""


def encode_points(points: Sequence[Point]) -> bytes:
    return orjson.dumps([[p.measurement, p.tags, p.fields, p.ts] for p in points])


def decode_points(body: bytes) -> list[Point]:
    return [Point(m, tuple((k, v) for k, v in tags), fields, ts)
            for m, tags, fields, ts in orjson.loads(body)]


class Collector:
    def __init__(self, options: CollectorOptions, store: Store) -> None:
        self.options = options
        self.store = store
        self.stats = Stats()
        self.metrics = metrics_http.CollectorMetrics()
        native = Route(topics.subscription(), NativeDecoder(options.limits))
        wiring = [(options.mqtt, (native, *options.routes)),
                  *((c.mqtt, c.routes) for c in options.connections)]
        share = options.share_group
        self._links: list[tuple[Subscriber, tuple[Route, ...]]] = []
        for mqtt, routes in wiring:
            filters = [f"$share/{share}/{r.filter}" if share else r.filter for r in routes]
            self._links.append((Subscriber(mqtt, filters, watch_drops=True), routes))
        self.subscriber = self._links[0][0]
        self.spool = Spool(options.spool_dir, max_bytes=options.spool_max_bytes)
        self._store_ok = True
        self._store_error = ""  # why the store is not ok, for /readyz
        self._spool_error: str | None = None  # why the spool last failed, until it works
        self._withheld = 0  # messages held unacknowledged: neither store nor spool took them
        self._stopping = asyncio.Event()
        self._storing = asyncio.Event()  # the store is open: `ingest` may write
        self._warned_unknown: set[str] = set()

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask the collector to flush what it holds and exit (SIGTERM)."""
        self._stopping.set()
        for sub, _ in self._links:
            sub.interrupt()

    async def run(self) -> None:
        # Subscribe first: no store check and no spool recovery before the subscription.
        async with contextlib.AsyncExitStack() as subscriptions:
            for sub, _ in self._links:
                await subscriptions.enter_async_context(sub)
            await self._open_spool()
            stateful = [r.decoder for _, routes in self._links for r in routes
                        if isinstance(r.decoder, Stateful)]
            for decoder in stateful:
                await self._attach(decoder)
            try:
                async with self.store, asyncio.TaskGroup() as tg:
                    self._storing.set()
                    background = [tg.create_task(self._drain_loop(), name="spool-drain")]
                    if self.options.metrics_port:
                        app = metrics_http.build_app(self.metrics, self._readiness)
                        background.append(tg.create_task(metrics_http.serve(
                            app, self.options.metrics_host, self.options.metrics_port),
                            name="metrics-http"))
                    loops = [tg.create_task(self._batch_loop(sub, routes), name=f"batches-{i}")
                             for i, (sub, routes) in enumerate(self._links)]
                    await asyncio.gather(*loops)
                    for task in background:
                        task.cancel()
            finally:
                self._storing.clear()
                for decoder in stateful:
                    decoder.detach()
                await asyncio.to_thread(self.spool.close)
        log.info("collector stopped: %d received, %d points stored, %d spooled, "
                 "%d dead letters", self.stats.received, self.stats.stored,
                 self.stats.spooled, self.stats.dead_letters)

    async def _open_spool(self) -> None:
        """Open the spool; a disk that does not let it open is a spool error (retried by the
        drain loop), not the end of the collector: the store may take everything meanwhile.
        Another process owning the directory is a configuration error: raised."""
        try:
            await asyncio.to_thread(self.spool.open)
        except SpoolLocked:
            raise
        except SpoolError as exc:
            self._spool_failed(exc)

    async def _attach(self, decoder: Stateful) -> None:
        """Keep a decoder's state beside the spool; a disk that refuses leaves it in memory
        (a restart then costs a `no_birth` dead letter and a rebirth per Sparkplug node)."""
        try:
            await asyncio.to_thread(decoder.attach, self.options.spool_dir)
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot keep decoder state in %s (%s); it stays in memory",
                        self.options.spool_dir, exc)

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        connected = all(sub.connected for sub, _ in self._links)
        # The broker's drops are reported, never a reason to be unready: they are lost
        # already, and a collector taken out of service would only make the broker drop more.
        drops = {sub.drops.broker: sub.drops.total for sub, _ in self._links if sub.drops}
        # A failing spool is: a store outage now would stop all acknowledgement.
        ready = connected and self._spool_error is None
        return ready, {"mqtt_connected": connected, "store_ok": self._store_ok,
                       "store_error": self._store_error,
                       "spool_ok": self._spool_error is None, "spool_error": self._spool_error,
                       "withheld_messages": self._withheld,
                       "mqtt_protocol": self.subscriber.protocol,
                       "broker_dropped_messages": drops}

    # -- the batch pipeline ----------------------------------------------------------------
    async def _batch_loop(self, sub: Subscriber, routes: tuple[Route, ...]) -> None:
        opts = self.options
        pending: deque[tuple[asyncio.Task[None], list[Message]]] = deque()

        async def complete() -> None:
            task, batch = pending.popleft()
            try:
                await task
            except Withheld:
                return  # not durable: the broker delivers it again
            sub.ack(batch)

        # Wait for the next batch and for the oldest one in flight at once: a stored batch is
        # acknowledged as soon as it is stored, not when the next one arrives. A broker that
        # sends no more until it has acks (its in-flight window: 20 QoS 1 messages on a stock
        # Mosquitto over MQTT 3.1.1, 32 on EMQX) would otherwise wait for us while we waited
        # for it.
        taking: asyncio.Task[list[Message]] | None = None
        while not self._stopping.is_set():
            if taking is None:
                taking = asyncio.ensure_future(sub.take(
                    opts.batch_max_messages, opts.batch_interval_s, opts.batch_max_bytes))
            await asyncio.wait((taking, pending[0][0]) if pending else (taking,),
                               return_when=asyncio.FIRST_COMPLETED)
            if taking.done():
                batch, taking = taking.result(), None
                if batch:
                    pending.append((asyncio.create_task(self._process(batch, routes, sub)),
                                    batch))
            while pending and (len(pending) >= opts.max_batches_in_flight
                               or pending[0][0].done()):
                await complete()
        if taking is not None:  # interrupted: it answers at once, maybe with a last batch
            if batch := await taking:
                pending.append((asyncio.create_task(self._process(batch, routes, sub)), batch))
        # Flush: what was received but not yet processed is written and acknowledged too.
        while batch := sub.take_nowait(opts.batch_max_messages, opts.batch_max_bytes):
            pending.append((asyncio.create_task(self._process(batch, routes, sub)), batch))
        while pending:
            await complete()

    async def _process(self, batch: Sequence[Message], routes: tuple[Route, ...],
                       sub: Subscriber | None) -> None:
        points: list[Point] = []
        received = len(batch)
        for msg in batch:
            if msg.topic[:1] == "$" and sub is not None and sub.observe(msg):
                self._note_drops(sub)
                received -= 1
                continue
            decoded = decode(routes, msg.topic, msg.payload, msg.received_ns)
            points.extend(decoded.points)
            for topic, payload in decoded.replies:  # Sparkplug rebirth requests
                if sub is not None:
                    sub.publish(topic, payload, qos=0)
            for rejection in decoded.rejections:
                points.append(dead_letter(msg.topic, rejection, msg.received_ns))
            if decoded.skipped:
                self.metrics.skipped.inc(decoded.skipped)
            if decoded.unknown_metrics:
                self._note_unknown(decoded.unknown_metrics)
        self.stats.received += received
        self.metrics.received.inc(received)
        await self._persist(points, len(batch))

    def _note_drops(self, sub: Subscriber) -> None:
        if sub.drops is not None and sub.drops.total is not None:
            self.metrics.broker_dropped.labels(sub.drops.broker).set(sub.drops.total)

    async def ingest(self, messages: Sequence[tuple[str, bytes]], received_ns: int,
                     timeout_s: float = 30.0) -> None:
        """Store messages that did not come over MQTT (the demo's backfill of weeks, which
        a broker would take minutes to carry), exactly as if they had: the same decoders,
        dead letters, counts and spool, with nothing to acknowledge. Each message counts as
        received a millisecond after the one before it, from `received_ns`, as over a
        broker: identical rejected messages received in the same millisecond are one dead
        letter (`ingest.model.dead_letter`). Call it while `run` runs; it waits up to
        `timeout_s` for the store to open."""
        try:
            await asyncio.wait_for(self._storing.wait(), timeout_s)
        except TimeoutError:
            raise RuntimeError(f"the collector's store did not open in {timeout_s:g} s; "
                               "is the collector running?") from None
        routes = self._links[0][1]
        await self._process([Message(topic, payload, received_ns + i * 1_000_000, 0, 0, 0)
                             for i, (topic, payload) in enumerate(messages)], routes, None)

    def _note_unknown(self, names: list[str]) -> None:
        self.metrics.unknown_metrics.inc(len(names))
        for name in names:
            if name not in self._warned_unknown and len(self._warned_unknown) < 1000:
                self._warned_unknown.add(name)
                log.info("metric %r is not in the registry: stored without unit", name)

    async def _persist(self, points: list[Point], messages: int) -> None:
        """Make `points` durable, in the store or else in the spool; while neither takes
        them, hold on (the batch's `messages` stay unacknowledged) and try again, until the
        collector stops (Withheld)."""
        if not points or await self._store_or_spool(points):
            return
        self._withheld += messages
        self.metrics.withheld.set(self._withheld)
        log.warning("neither the store nor the spool takes a batch of %d points; its %d "
                    "messages stay unacknowledged at the broker until one does (the spool: "
                    "%s)", len(points), messages, self._spool_error)
        try:
            while True:
                if self._stopping.is_set():
                    raise Withheld
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.options.drain_interval_s):
                        await self._stopping.wait()
                if await self._store_or_spool(points):
                    return
        finally:
            self._withheld -= messages
            self.metrics.withheld.set(self._withheld)

    async def _store_or_spool(self, points: list[Point]) -> bool:
        """Write to the store, or spool when it is unavailable; False when neither worked."""
        if not self._store_ok and self._spool_error is not None:
            with contextlib.suppress(Exception):  # both failed before: is the store back?
                await self.store.ping()
                self._set_store_ok(True)
        if self._store_ok:
            try:
                await self._write(points)
                return True
            except Waiting as exc:
                self._set_store_ok(False, str(exc))
                points = exc.points
            except StoreUnavailable as exc:
                self._set_store_ok(False, str(exc))
            except Exception as exc:  # a store bug must not end the batch loop
                log.exception("store write failed unexpectedly; spooling the batch")
                self._set_store_ok(False, repr(exc))
        try:
            await self._spool(points)
        except SpoolError as exc:
            self._spool_failed(exc)
            return False
        return True

    async def _write(self, points: list[Point]) -> None:
        """Write to the store; refused points become dead letters, and so does a batch the
        store rejects as a whole. Raises StoreUnavailable (or anything unexpected) when the
        points must wait in the spool."""
        try:
            await self._write_points(points)
        except StoreRejected as exc:
            log.error("store rejected a batch of %d points; dead-lettering them: %s",
                      len(points), exc)
            refused = [RejectedPoint(p, str(exc)) for p in points]
            letters = [p if p.measurement == DEAD_LETTER_MEASUREMENT else _refused_letter(r)
                       for p, r in zip(points, refused, strict=True)]
            try:
                lost = await self.store.write(letters)
            except StoreRejected as again:
                # Not even dead letters are taken: keep everything and retry later.
                raise StoreUnavailable(f"the store rejects dead letters too: {again}") from None
            self._count_stored(letters, lost)

    async def _write_points(self, points: list[Point]) -> None:
        started = time.monotonic()
        refused = await self.store.write(points)
        self.metrics.store_latency.observe(time.monotonic() - started)
        self._count_stored(points, refused)
        if refused:
            letters = [_refused_letter(r) for r in refused]
            again = await self.store.write(letters)
            self._count_stored(letters, again)
            if again:
                # E.g. max-series-per-database: the dead letters' own series is refused too.
                # Their points wait in the spool; what was stored or dead-lettered is final.
                kept = {id(r.point) for r in again}
                raise Waiting(f"the store refuses dead letters too: {again[0].detail}",
                              [r.point for r, letter in zip(refused, letters, strict=True)
                               if id(letter) in kept])

    def _count_stored(self, points: list[Point], refused: list[RejectedPoint]) -> None:
        if refused:
            gone = {id(r.point) for r in refused}
            points = [p for p in points if id(p) not in gone]
        kinds = Counter(map(_MEASUREMENT, points))  # counted in C: this runs per reading
        letters = kinds.pop(DEAD_LETTER_MEASUREMENT, 0)
        if letters:
            for p in points:
                if p.measurement == DEAD_LETTER_MEASUREMENT:
                    reason = p.tag("reason")
                    self.stats.by_reason[reason] += 1
                    self.metrics.rejected.labels(reason).inc()
            self.stats.dead_letters += letters
        self.stats.by_kind.update(kinds)
        self.stats.stored += len(points)
        self.metrics.stored.inc(len(points))

    async def _spool(self, points: list[Point]) -> None:
        body = encode_points(points)
        if self._spool_error is not None:  # it failed before: reopen it if it is closed
            await self._check_spool()
        dropped = await asyncio.to_thread(self.spool.put, body, len(points))
        self._spool_works()
        self.stats.spooled += len(points)
        self.metrics.spooled.inc(len(points))
        if dropped:
            self.metrics.spool_dropped.set(self.spool.dropped)

    async def _check_spool(self) -> None:
        # Room for two batches (points encode to about their messages' size), so a disk
        # with a few bytes free is not taken for one that is back.
        await asyncio.to_thread(self.spool.check, 2 * self.options.batch_max_bytes)
        self._spool_works()

    def _spool_failed(self, exc: SpoolError) -> None:
        why = str(exc)
        if self._spool_error is None:
            log.error("spool unusable: %s; while it is, a batch the store cannot take stays "
                      "unacknowledged at the broker (free the disk, or make it writable)", why)
        self._spool_error = why
        self.metrics.spool_errors.inc()
        self.metrics.spool_up.set(0)

    def _spool_works(self) -> None:
        if self._spool_error is not None:
            log.info("spool usable again: %s", self.options.spool_dir)
        self._spool_error = None
        self.metrics.spool_up.set(1)

    def _set_store_ok(self, ok: bool, why: str = "") -> None:
        if ok != self._store_ok:
            if ok:
                log.info("store is back; draining the spool")
            else:
                log.warning("store unavailable, spooling to %s: %s",
                            self.options.spool_dir, why)
        self._store_ok, self._store_error = ok, "" if ok else why
        self.metrics.store_up.set(1 if ok else 0)

    # -- the spool drain -------------------------------------------------------------------
    async def _drain_loop(self) -> None:
        while True:
            try:
                if self._spool_error is not None:
                    await self._check_spool()
                drained = await self._drain_once()
                depth = await asyncio.to_thread(self.spool.depth)
                self.metrics.spool_depth.set(depth.items)
                self.metrics.spool_skipped.set(await asyncio.to_thread(
                    lambda: self.spool.skipped))
            except SpoolError as exc:
                self._spool_failed(exc)
                drained = False
            self.metrics.mqtt_connected.set(1 if self.subscriber.connected else 0)
            if not drained:
                await asyncio.sleep(self.options.drain_interval_s)

    async def _drain_once(self) -> bool:
        """Replay the oldest spooled records; True when something was drained."""
        records = await asyncio.to_thread(self.spool.peek, 4)
        if not records:
            return False
        if not self._store_ok:
            try:
                await self.store.ping()
            except Exception as exc:
                log.debug("store still unavailable: %r", exc)
                return False
            self._set_store_ok(True)
        for record in records:
            try:
                points = decode_points(record.body)
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                log.error("spooled record %d does not decode (%s); skipped", record.id, exc)
                await asyncio.to_thread(self.spool.remove, [record.id], skipped=True)
                continue
            try:
                await self._write(points)
            except Waiting as exc:  # the rest is final: only the waiting points stay spooled
                self._set_store_ok(False, str(exc))
                await self._spool(exc.points)
                await asyncio.to_thread(self.spool.remove, [record.id])
                return False
            except StoreUnavailable as exc:
                self._set_store_ok(False, str(exc))
                return False
            except Exception as exc:  # a store bug must not end the drain
                log.exception("spool drain failed unexpectedly; keeping the record")
                self._set_store_ok(False, repr(exc))
                return False
            await asyncio.to_thread(self.spool.remove, [record.id])
        return True


def decode(routes: tuple[Route, ...], topic: str, payload: bytes, received_ns: int) -> Decoded:
    """Decode with the route whose filter matches the topic (the first route, the native one,
    for citypilot's own topics and anything unmatched). Never raises."""
    decoder = routes[0].decoder  # native first: its topics are the hot path
    if len(routes) > 1 and not topic.startswith(topics.PREFIX + "/"):
        for route in routes:
            if topic_matches(route.filter, topic):
                decoder = route.decoder
                break
    try:
        return decoder(topic, payload, received_ns)
    except Exception as exc:  # a decoder bug must not stall the pipeline
        log.exception("decoder failed on %s", topic)
        return Decoded(rejections=[Rejection(Reason.UNDECODABLE, f"decoder error: {exc!r}",
                                             payload)])


def _refused_letter(refused: RejectedPoint) -> Point:
    p = refused.point
    payload = encode_points([p])
    return dead_letter(f"(store) {p.measurement}",
                       Rejection(Reason.STORE_REJECTED, refused.detail, payload), p.ts)
