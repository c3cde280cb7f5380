"""The collector: MQTT in, store out, nothing acknowledged before it is durable.

Messages are taken in batches (by count and time), decoded, and written to the store; only
then are they acknowledged to the broker, in arrival order (the pattern of Telegraf's
mqtt_consumer `onMessage`/`onDelivered` with `max_undelivered_messages`). A bounded number of
batches is in flight, so decoding the next batch overlaps the store's write of the previous.
The batches are made durable by `durable.Durable` (store, else spool, else held
unacknowledged), which also drains the spool; this module is the MQTT side: subscriptions,
batches, decoding, acknowledgement in order, and `/readyz`. Stopping leaves held batches to
the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Sequence

from ingest import topics
from ingest.collector import metrics as metrics_http
from ingest.collector.durable import Durable, Withheld
from ingest.collector.options import CollectorOptions, Route, Stats
from ingest.decode import Stateful
from ingest.decode.native import NativeDecoder
from ingest.model import Decoded, Point, Reason, Rejection, dead_letter
from ingest.mqtt import Message, Subscriber, topic_matches
from ingest.stores.base import Store

log = logging.getLogger(__name__)


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
        self._stopping = asyncio.Event()
        self.durable = Durable(options, store, self.stats, self.metrics, self._stopping)
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
            await self.durable.open_spool()
            stateful = [r.decoder for _, routes in self._links for r in routes
                        if isinstance(r.decoder, Stateful)]
            for decoder in stateful:
                await self._attach(decoder)
            try:
                async with self.store, asyncio.TaskGroup() as tg:
                    self._storing.set()
                    background = [tg.create_task(self.durable.drain_loop(self._tick),
                                                  name="spool-drain")]
                    if self.options.metrics_port:
                        app = metrics_http.build_app(self.metrics.registry, self._readiness)
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
                await asyncio.to_thread(self.durable.spool.close)
        log.info("collector stopped: %d received, %d points stored, %d spooled, "
                 "%d dead letters", self.stats.received, self.stats.stored,
                 self.stats.spooled, self.stats.dead_letters)

    async def _attach(self, decoder: Stateful) -> None:
        """Keep a decoder's state beside the spool; a disk that refuses leaves it in memory
        (a restart then costs a `no_birth` dead letter and a rebirth per Sparkplug node)."""
        try:
            await asyncio.to_thread(decoder.attach, self.options.spool_dir)
        except (OSError, sqlite3.Error) as exc:
            log.warning("cannot keep decoder state in %s (%s); it stays in memory",
                        self.options.spool_dir, exc)

    def _tick(self) -> None:
        self.metrics.mqtt_connected.set(1 if self.subscriber.connected else 0)

    def _readiness(self) -> tuple[bool, dict[str, object]]:
        connected = all(sub.connected for sub, _ in self._links)
        # The broker's drops are reported, never a reason to be unready: they are lost
        # already, and a collector taken out of service would only make the broker drop more.
        drops = {sub.drops.broker: sub.drops.total for sub, _ in self._links if sub.drops}
        # A failing spool is: a store outage now would stop all acknowledgement.
        ready = connected and self.durable.spool_ok
        return ready, {"mqtt_connected": connected, **self.durable.readiness(),
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
        await self.durable.persist(points, len(batch))

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


