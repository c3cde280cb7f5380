"""Nothing acknowledged before it is durable: a batch's points go to the store, or to the
on-disk spool when the store is unavailable, or are held (unacknowledged) while neither takes
them; a drain task replays the spool oldest-first once the store answers again.

Points the store refuses become dead letters in the same store (one by one, or a whole batch
with StoreRejected); when even their dead letters are refused (max-series-per-database), only
those points wait in the spool (`Waiting`). No store error ends the collector: anything
unexpected is logged and the batch spooled. A spool that fails (disk full, read-only, gone) is
reported in `/readyz` and retried every `drain_interval_s`; a spooled record that does not
decode is skipped and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import operator
import time
from collections import Counter
from collections.abc import Callable, Sequence

import orjson

from ingest.collector.metrics import CollectorMetrics
from ingest.collector.options import CollectorOptions, Stats
from ingest.model import DEAD_LETTER_MEASUREMENT, Point, Reason, Rejection, dead_letter
from ingest.spool import Spool, SpoolError, SpoolLocked
from ingest.stores.base import RejectedPoint, Store, StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)
_MEASUREMENT = operator.attrgetter("measurement")


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


class Durable:
    """The store, the spool, and what is known of both; `persist` makes a batch durable,
    `drain_loop` replays the spool. `stopping` is the collector's: set, a held batch gives
    up (Withheld) instead of waiting for a disk or store to come back."""

    def __init__(self, options: CollectorOptions, store: Store, stats: Stats,
                 metrics: CollectorMetrics, stopping: asyncio.Event) -> None:
        self.options = options
        self.store = store
        self.stats = stats
        self.metrics = metrics
        self.spool = Spool(options.spool_dir, max_bytes=options.spool_max_bytes)
        self._stopping = stopping
        self._store_ok = True
        self._store_error = ""  # why the store is not ok, for /readyz
        self._spool_error: str | None = None  # why the spool last failed, until it works
        self._withheld = 0  # messages held unacknowledged: neither store nor spool took them

    def readiness(self) -> dict[str, object]:
        return {"store_ok": self._store_ok, "store_error": self._store_error,
                "spool_ok": self._spool_error is None, "spool_error": self._spool_error,
                "withheld_messages": self._withheld}

    @property
    def spool_ok(self) -> bool:
        return self._spool_error is None

    async def open_spool(self) -> None:
        """Open the spool; a disk that does not let it open is a spool error (retried by the
        drain loop), not the end of the collector: the store may take everything meanwhile.
        Another process owning the directory is a configuration error: raised."""
        try:
            await asyncio.to_thread(self.spool.open)
        except SpoolLocked:
            raise
        except SpoolError as exc:
            self._spool_failed(exc)

    async def persist(self, points: list[Point], messages: int) -> None:
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

    async def _spool(self, points: list[Point], *, again: bool = False) -> None:
        """Spool points; `again`: points drained from the spool and spooled anew (they wait
        for the store), counted when they were first spooled."""
        body = encode_points(points)
        if self._spool_error is not None:  # it failed before: reopen it if it is closed
            await self._check_spool()
        dropped = await asyncio.to_thread(self.spool.put, body, len(points))
        self._spool_works()
        if not again:
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
    async def drain_loop(self, tick: Callable[[], None]) -> None:
        """Replay the spool whenever the store takes writes; `tick` runs after each round."""
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
            tick()
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
                await self._spool(exc.points, again=True)
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


def _refused_letter(refused: RejectedPoint) -> Point:
    p = refused.point
    payload = encode_points([p])
    return dead_letter(f"(store) {p.measurement}",
                       Rejection(Reason.STORE_REJECTED, refused.detail, payload), p.ts)
