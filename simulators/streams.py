"""Message streams: each device's telemetry or events, and its status, as timed messages.

A stream ticks on a grid (`origin + k * interval` ms) inside a time window; each tick becomes
messages with their expectations, after the device's fault plan had its say. Per series the
timestamps are distinct, so no two messages of one device merge into one stored point: sensor
and status ticks are the grid itself (a skewed clock never lands on it), events are strictly
increasing even milliseconds (a skewed one is odd).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from ingest import topics
from simulators import faults
from simulators.deployment import STATUS_INTERVAL_S, Unit
from simulators.faults import Fault, FaultPlan
from simulators.kinds import SensorModel
from simulators.services import ServiceModel
from simulators.summary import EVENT, STATUS, TELEMETRY, Expectation, Planned

MIN_INTERVAL_MS = 2  # a skewed timestamp needs room between two ticks
_BATTERY_LIFE_S = 3 * 365 * 86_400.0
_dumps = orjson.dumps


class DeviceState:
    """What the streams of one device share: its generator, battery, faults, silences."""

    __slots__ = ("battery", "down_until", "draining", "info", "plan", "replace_at", "rng",
                 "rssi", "silent_left", "snr")

    def __init__(self, unit: Unit, plan: FaultPlan) -> None:
        self.info, self.rng, self.plan = unit.info, unit.rng, plan
        self.battery = self.rng.uniform(0.45, 1.0) if unit.info.on_battery else None
        self.rssi = self.rng.uniform(-115.0, -60.0)
        self.snr = self.rng.uniform(-5.0, 10.0)
        self.draining = False
        self.down_until = self.replace_at = 0  # a dead battery: nothing until it is replaced
        self.silent_left = 0  # a silence: this many more messages are lost


class Stream:
    """One series of one device: a topic, a grid of ticks, and its fault bookkeeping."""

    channel = ""

    def __init__(self, dev: DeviceState, bucket: str, base_interval_s: float) -> None:
        info = dev.info
        self.dev, self.bucket = dev, bucket
        self.topic = topics.build(topics.Identity(info.pilot, info.gateway, info.device),
                                  topics.Channel(self.channel))
        self.base_ms = round(base_interval_s * 1000)
        self.normal = Expectation(self.channel, bucket)
        self.dropped = {f: Expectation(self.channel, bucket, stores=False, send=False, fault=f)
                        for f in (Fault.DROPOUT, Fault.SILENCE, Fault.BATTERY_DRAIN)}
        self.interval = self.base_ms
        self.origin = self.last_ts = 0
        self.window = (0, 0)
        self.held: list[Planned] = []
        self.taken: set[int] = set()
        self.faulty = dev.plan.probability > 0.0

    def begin(self, start_ms: int, end_ms: int, interval_ms: int) -> int:
        """Start a window; returns the first tick (a device-specific phase on the grid)."""
        self.interval, self.window = interval_ms, (start_ms, end_ms)
        self.origin = start_ms + self.dev.rng.randrange(interval_ms)
        self.last_ts = 0
        return self.origin

    def produce(self, ts: int) -> list[Planned]:
        raise NotImplementedError

    def is_regular(self, t: int) -> bool:
        return (t - self.origin) % self.interval == 0

    def emit(self, ts: int, doc: dict[str, object]) -> list[Planned]:
        """The messages for one payload: normal, or as a drawn fault makes it; messages held
        back earlier (out of order) follow it."""
        if not self.faulty:  # the common case, kept short
            return [Planned(self.topic, _dumps(doc), self.normal, ts)]
        dev, pending = self.dev, None
        if self.held:  # a fresh list: an out-of-order fault below must not land in pending
            pending, self.held = self.held, []
        if dev.down_until > ts:
            out = [Planned(self.topic, b"", self.dropped[Fault.BATTERY_DRAIN], ts)]
        elif dev.silent_left:
            dev.silent_left -= 1
            out = [Planned(self.topic, b"", self.dropped[Fault.SILENCE], ts)]
        else:
            fault = dev.plan.draw(dev.rng, self.channel)
            if fault is None:
                out = [Planned(self.topic, _dumps(doc), self.normal, ts)]
            else:
                out = self._faulty(fault, ts, doc)
        if pending:
            out.extend(pending)
        return out

    def flush(self) -> list[Planned]:
        pending, self.held = self.held, []
        return pending

    def _faulty(self, fault: Fault, ts: int, doc: dict[str, object]) -> list[Planned]:
        dev, rng = self.dev, self.dev.rng

        def expect(**kw: bool) -> Expectation:
            return Expectation(self.channel, self.bucket, fault=fault, **kw)

        if fault in (Fault.DROPOUT, Fault.SILENCE):
            if fault is Fault.SILENCE:
                dev.silent_left = rng.randint(*faults.SILENCE_MESSAGES) - 1
            return [Planned(self.topic, b"", self.dropped[fault], ts)]
        if fault is Fault.MALFORMED:
            raw = faults.malformed(rng, doc, self.channel)
            return [Planned(self.topic, raw, expect(stores=False, malformed=True), ts)]
        if fault is Fault.OUT_OF_RANGE:
            raw = _dumps(faults.out_of_range(rng, doc, self.channel))
            return [Planned(self.topic, raw, expect(stores=False, malformed=True), ts)]
        if fault is Fault.CLOCK_SKEW:
            return self._skewed(ts, doc, expect)
        doc = self._altered(fault, doc)
        raw = _dumps(doc)
        if fault is Fault.DUPLICATE:
            return [Planned(self.topic, raw, expect(), ts),
                    Planned(self.topic, raw, expect(stores=False, copy=True), ts)]
        msg = Planned(self.topic, raw, expect(), ts)
        if fault is Fault.OUT_OF_ORDER:
            self.held.append(msg)
            return []
        return [msg]

    def _altered(self, fault: Fault, doc: dict[str, object]) -> dict[str, object]:
        """The payload of a fault that still stores: a spike, a stuck value, a drain."""
        dev = self.dev
        if fault is Fault.BATTERY_DRAIN and dev.battery is not None:
            dev.draining = True
            dev.battery = max(0.01, dev.battery - dev.rng.uniform(0.1, 0.3))
            if "battery" in doc:
                return {**doc, "battery": round(dev.battery, 3)}
        return doc

    def _skewed(self, ts: int, doc: dict[str, object],
                expect: Callable[..., Expectation]) -> list[Planned]:
        rng = self.dev.rng
        if rng.random() < faults.RTC_RESET_SHARE:
            raw = _dumps({**doc, "ts": faults.rtc_reset(rng)})
            return [Planned(self.topic, raw, expect(stores=False, malformed=True), ts)]
        t = faults.skewed(rng, ts, self.window, self.taken, self.is_regular)
        if t is None:  # no room on a 1 ms grid: send it as it is, without a fault
            return [Planned(self.topic, _dumps(doc), self.normal, ts)]
        return [Planned(self.topic, _dumps({**doc, "ts": t}), expect(), ts)]


class SensorStream(Stream):
    channel = TELEMETRY

    def __init__(self, dev: DeviceState, model: SensorModel) -> None:
        super().__init__(dev, model.kind, model.base_interval_s)
        self.model = model
        self.last_values: dict[str, float] | None = None
        self._stuck = False

    def produce(self, ts: int) -> list[Planned]:
        dt_s = (ts - self.last_ts) / 1000.0 if self.last_ts else self.base_ms / 1000.0
        self.last_ts = ts
        values = self.model.read(ts, dt_s)
        self._stuck = False
        out = self.emit(ts, {"ts": ts, "kind": self.bucket, "values": values})
        if not self._stuck:  # a frozen sensor keeps repeating what it showed before
            self.last_values = values
        return out

    def _altered(self, fault: Fault, doc: dict[str, object]) -> dict[str, object]:
        values = doc["values"]
        assert isinstance(values, dict)
        if fault is Fault.STUCK and self.last_values is not None:
            self._stuck = True
            return {**doc, "values": self.last_values}
        if fault is Fault.SPIKE:
            return {**doc, "values": faults.spike(self.dev.rng, values)}
        return super()._altered(fault, doc)


class ServiceStream(Stream):
    channel = EVENT

    def __init__(self, dev: DeviceState, model: ServiceModel) -> None:
        super().__init__(dev, model.service, model.base_interval_s)
        self.model = model
        self.next_even = 0

    def is_regular(self, t: int) -> bool:
        return t % 2 == 0

    def produce(self, ts: int) -> list[Planned]:
        self.last_ts = ts
        out: list[Planned] = []
        for t, kind, user, value in self.model.tick(ts, self.interval):
            t += t & 1  # strictly increasing even milliseconds: no two events share one
            if t < self.next_even:
                t = self.next_even
            self.next_even = t + 2
            out.extend(self.emit(ts, {"ts": t, "service": self.bucket, "type": kind,
                                      "user": user, "value": value}))
        return out


class StatusStream(Stream):
    channel = STATUS

    def __init__(self, dev: DeviceState, interval_s: float = STATUS_INTERVAL_S) -> None:
        super().__init__(dev, "", interval_s)

    def produce(self, ts: int) -> list[Planned]:
        dev = self.dev
        self.last_ts = ts
        doc: dict[str, object] = {"ts": ts, "state": "online"}
        if dev.info.role == "gateway":
            doc["spool_depth"] = 0
        dead = False
        if dev.battery is not None:
            dead = self._discharge(ts)
            if dead:
                doc["state"] = "offline"
            doc["battery"] = round(dev.battery, 3)
        doc["rssi"] = round(dev.rssi + dev.rng.gauss(0.0, 3.0))
        if dev.battery is not None:
            doc["snr"] = round(dev.snr + dev.rng.gauss(0.0, 1.5), 1)
        out = self.emit(ts, doc)
        if dead:  # its last gasp sent, the device is silent until a new battery is in
            dead_ticks = dev.rng.randint(*faults.DEAD_STATUS_TICKS)
            dev.down_until = dev.replace_at = ts + dead_ticks * self.interval
        return out

    def _discharge(self, ts: int) -> bool:
        """Drain the battery by one status interval; True when it has just died."""
        dev = self.dev
        assert dev.battery is not None
        if dev.replace_at:
            if ts < dev.replace_at:
                return False  # dead, waiting for the technician
            dev.battery, dev.draining, dev.replace_at = 1.0, False, 0
        step = self.base_ms / 1000.0 / _BATTERY_LIFE_S
        if dev.draining:
            step = dev.rng.uniform(0.1, 0.2)
        dev.battery = max(0.0, dev.battery - step)
        return dev.draining and dev.battery == 0.0
