"""Sparkplug B: births, deaths and data of edge nodes and their devices, and rebirth requests.

Topics `spBv1.0/{group}/{type}/{edge}[/{device}]`. Pilot and gateway come from the source, as
for every adapter; the device is the edge node id for node messages (NBIRTH, NDATA, NDEATH)
and `{edge}/{device}` for device messages (DBIRTH, DDATA, DDEATH), sanitised to the topic
grammar: `plc-1` and `plc-1_pump_3` (a `kinds` glob may match the raw `plc-1/*`). The group
is not part of the device: two groups that reuse an edge id belong in two sources.

Unlike the JSON formats, Sparkplug is stateful, so one decoder instance keeps, per edge node
(group, edge):
- the alias tables from NBIRTH and each DBIRTH (DATA metrics usually carry only an alias and
  no datatype: they are unreadable without their birth);
- `seq` (0-255, wrapping, shared by all the node's messages but NDEATH): a gap means lost
  messages and stale tables;
- the NBIRTH's `bdSeq`: the NDEATH (the node's MQTT will) counts only when its `bdSeq`
  matches; otherwise it is the late will of an earlier session (or of one whose NBIRTH this
  collector never saw) and is ignored (skipped).
On a `seq` gap, an alias no birth declared, a named metric the birth lacks, or DATA before its
BIRTH, the decoder asks the node for a rebirth: an NCMD `Node Control/Rebirth` in
`Decoded.replies`, which the collector publishes; at most one per node per
`REBIRTH_INTERVAL_S`, so a broken node cannot make us flood it. DATA before its BIRTH and
metrics with an unknown alias are dead letters (`no_birth`): their values cannot be named, and
the dead letter keeps them visible (the readable metrics of the same message are stored). A
message after a `seq` gap is stored (the tables are probably still right, and the rebirth
puts them right if not), and so is a DBIRTH before its NBIRTH (a birth names its metrics).

Readings: numeric datatypes (Int8-UInt64, Float, Double, Boolean as 1/0) go through the same
field mapping as every adapter (`Inputs/Temperature` offers itself and its leaf
`Temperature`, so it becomes `temperature`; unmapped names are stored normalised,
`inputs_flow_rate`). Strings, DateTime (a moment, not a measurement), UUID, DataSet, Bytes,
File, Template and arrays are not stored: counted per datatype in `not_stored` and per name in
`dropped_fields`; null values are counted in `not_stored` as `null`. `bdSeq` and
`Node Control/*`/`Device Control/*` are protocol, not readings.
Time: a metric's own timestamp (ms), else the payload's, both the edge's clock (time_source
"device"); neither (or 0): the receive time. NDEATH uses the receive time: the will was
composed when the node connected. `is_historical` metrics (store-and-forward backfill) are
stored at their own timestamps and change nothing the decoder tracks: they never ask for a
rebirth, and one without a timestamp of its own is dead-lettered (`bad_timestamp`) rather than
stored at the send time, where it would pose as the current value.
BIRTH -> device_status `online`; NDEATH -> `offline` for the node and every device born under
it; DDEATH -> `offline` for the device. STATE, NCMD, DCMD (our own rebirth requests come back
on `spBv1.0/#`) and `$sparkplug/certificates/...` copies are skipped and counted in `ignored`.

The state survives a restart once the collector `attach`es the decoder to its spool directory
(`sparkplug_state`): births and alias tables are saved as they change, so the first DATA after
a restart is read with the tables of its birth. Limits: without `attach` (the `replay`
command, tests) the state is in memory, and a dead letter replayed later meets no birth. The
state saved is the latest the decoder saw, which can be a birth of a batch not yet
acknowledged: a kill then redelivers that batch's DATA of the session before, read with the
newer tables. A shared subscription spreads one node's messages over several collectors,
which then see gaps everywhere: subscribe to a Sparkplug source from one collector only.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ingest.decode import Limits
from ingest.decode.adapter import Adapter, AdapterConfig, Reading, reject
from ingest.decode.fields import Offered, TimeSource
from ingest.decode.sparkplug_payload import (
    NUMERIC,
    DataType,
    Metric,
    Payload,
    PayloadError,
    numeric,
    parse,
    rebirth_command,
    type_name,
)
from ingest.decode.sparkplug_state import Node, NodeStates, Table
from ingest.model import Decoded, Reason

log = logging.getLogger(__name__)

NAMESPACE = "spBv1.0"
REBIRTH_INTERVAL_S = 5.0
MAX_NODES = 10_000  # edge nodes tracked per source; the oldest is forgotten beyond
_SKIPPED_TYPES = frozenset({"NCMD", "DCMD", "STATE"})
_NODE_TYPES = frozenset({"NBIRTH", "NDEATH", "NDATA"})
_DEVICE_TYPES = frozenset({"DBIRTH", "DDEATH", "DDATA"})
_CONTROL = ("Node Control/", "Device Control/")
_BD_SEQ = "bdSeq"


@dataclass(frozen=True, slots=True)
class Topic:
    group: str
    type: str
    edge: str
    device: str | None

    @property
    def source_device(self) -> str:
        """The raw device identity (sanitised by `Adapter.emit`)."""
        return self.edge if self.device is None else f"{self.edge}/{self.device}"


@dataclass(frozen=True, slots=True)
class Skip:
    """A message of the namespace that carries no readings: skipped, counted as `what`."""

    what: str


def parse_topic(topic: str) -> Topic | Skip | str:
    """The topic's parts, a Skip, or why it is not a Sparkplug B topic."""
    levels = topic.split("/")
    if levels[0] == "$sparkplug":
        return Skip("certificate")  # a Sparkplug-aware broker's copy of a birth
    if len(levels) == 3 and levels[:2] == [NAMESPACE, "STATE"]:
        return Skip("STATE")
    if levels[0] != NAMESPACE or len(levels) not in (4, 5) or not all(levels[1:]):
        return (f"topic {topic!r} is not {NAMESPACE}/{{group}}/{{type}}/{{edge node}}"
                "[/{device}]")
    kind = levels[2]
    if kind in _SKIPPED_TYPES:
        return Skip(kind)
    expected = 4 if kind in _NODE_TYPES else 5 if kind in _DEVICE_TYPES else 0
    if expected == 0:
        return f"topic {topic!r}: {kind!r} is not a Sparkplug B message type"
    if len(levels) != expected:
        what = "no device id" if kind in _NODE_TYPES else "a device id"
        return f"topic {topic!r}: a {kind} topic carries {what} after the edge node"
    return Topic(levels[1], kind, levels[3], levels[4] if expected == 5 else None)


class SparkplugDecoder(Adapter):
    def __init__(self, config: AdapterConfig, limits: Limits | None = None) -> None:
        super().__init__(config, limits)
        self.nodes: dict[tuple[str, str], Node] = {}
        self.not_stored: Counter[str] = Counter()  # metrics not stored, by datatype
        self.ignored: Counter[str] = Counter()  # messages skipped, by why
        self.rebirths_requested = 0
        self._states: NodeStates | None = None

    def attach(self, directory: Path) -> None:
        """Keep the nodes' state in `directory` (the collector's spool directory, which one
        process owns), starting from what it saved there before."""
        states = NodeStates(directory, self.config.gateway)
        saved = states.open()
        self.detach()
        self._states = states
        self.nodes.update(saved)
        log.info("Sparkplug source %s: %d edge nodes restored from %s", self.config.gateway,
                 len(saved), states.path)

    def detach(self) -> None:
        if self._states is not None:
            self._states.close()
            self._states = None

    def _save(self, topic: Topic) -> None:
        if self._states is not None:
            key = (topic.group, topic.edge)
            self._states.save(key, self.nodes.get(key))

    def decode(self, out: Decoded, topic: str, payload: bytes, received_ns: int) -> None:
        parsed = parse_topic(topic)
        if isinstance(parsed, Skip):
            self.ignored[parsed.what] += 1
            return
        if isinstance(parsed, str):
            reject(out, Reason.BAD_TOPIC, parsed, payload)
            return
        try:
            message = parse(payload)
        except PayloadError as exc:
            reject(out, Reason.UNDECODABLE, f"{parsed.type}: {exc}", payload)
            return
        step = {"NBIRTH": self._node_birth, "NDEATH": self._node_death,
                "DBIRTH": self._device_birth, "DDEATH": self._device_death,
                "NDATA": self._data, "DDATA": self._data}[parsed.type]
        step(out, parsed, message, payload, received_ns)

    # -- births and deaths -----------------------------------------------------------------
    def _node_birth(self, out: Decoded, topic: Topic, message: Payload, raw: bytes,
                    received_ns: int) -> None:
        old = self._node(topic)
        bd_seq = message.metric(_BD_SEQ)
        node = Node(born=True, bd_seq=None if bd_seq is None else bd_seq.value,
                    seq=_seq(message.seq), table=_table(message.metrics),
                    last_rebirth_ns=old.last_rebirth_ns)
        self.nodes[(topic.group, topic.edge)] = node
        self._save(topic)
        self._store(out, topic, node.table, message, raw, received_ns)
        self._status(out, topic.edge, "online", message, received_ns, raw)

    def _device_birth(self, out: Decoded, topic: Topic, message: Payload, raw: bytes,
                      received_ns: int) -> None:
        node = self._node(topic)
        if node.born:
            self._sequence(out, topic, node, message, received_ns)
        else:  # readable (a birth names and types its metrics), but the node's state is not
            self._rebirth(out, topic, node, received_ns, "DBIRTH before its node's NBIRTH")
        assert topic.device is not None
        table = node.devices[topic.device] = _table(message.metrics)
        self._save(topic)
        self._store(out, topic, table, message, raw, received_ns)
        self._status(out, topic.source_device, "online", message, received_ns, raw)

    def _node_death(self, out: Decoded, topic: Topic, message: Payload, raw: bytes,
                    received_ns: int) -> None:
        node = self._node(topic)
        bd_seq = message.metric(_BD_SEQ)
        value = None if bd_seq is None else bd_seq.value
        if not node.born or value != node.bd_seq:
            # A will from an earlier session (or of a birth we never saw): not this session's
            # death. Skipped, like Sparkplug hosts do.
            self.ignored["NDEATH (bdSeq does not match the NBIRTH)"] += 1
            return
        devices = [f"{topic.edge}/{device}" for device in node.devices]
        self.nodes[(topic.group, topic.edge)] = Node(last_rebirth_ns=node.last_rebirth_ns)
        self._save(topic)
        stale = Payload(None, None, ())  # the will's timestamp is its CONNECT time: not used
        for device in (topic.edge, *devices):
            self._status(out, device, "offline", stale, received_ns, raw)

    def _device_death(self, out: Decoded, topic: Topic, message: Payload, raw: bytes,
                      received_ns: int) -> None:
        node = self._node(topic)
        if node.born:
            self._sequence(out, topic, node, message, received_ns)
            assert topic.device is not None
            if node.devices.pop(topic.device, None) is not None:
                self._save(topic)
        self._status(out, topic.source_device, "offline", message, received_ns, raw)

    def _status(self, out: Decoded, device: str, state: str, message: Payload,
                received_ns: int, raw: bytes) -> None:
        reading = _reading(device, message.timestamp_ms, received_ns)
        reading.status = {"state": state}
        reading.raw = raw
        self.emit(out, reading, received_ns)

    # -- data ------------------------------------------------------------------------------
    def _data(self, out: Decoded, topic: Topic, message: Payload, raw: bytes,
              received_ns: int) -> None:
        node = self._node(topic)
        table = ((node.table if node.born else None) if topic.device is None
                 else node.devices.get(topic.device))
        if table is None:
            self._no_birth(out, topic, node, raw, received_ns,
                           f"before its {topic.type[0]}BIRTH")
            return
        self._sequence(out, topic, node, message, received_ns)
        self._store(out, topic, table, message, raw, received_ns)

    def _store(self, out: Decoded, topic: Topic, table: Table, message: Payload, raw: bytes,
               received_ns: int) -> None:
        """Name and type each metric through the table, then emit one reading per clock."""
        readings: dict[int | None, Reading] = {}
        unknown: list[int] = []
        undated: list[str] = []
        outdated = False
        for metric in message.metrics:
            named = _lookup(table, metric)
            if named is None:
                unknown.append(metric.alias if metric.alias is not None else -1)
                continue
            name, datatype, known = named
            outdated |= not known and not metric.historical
            if name == _BD_SEQ or name.startswith(_CONTROL):
                continue
            if metric.historical and not metric.timestamp_ms:
                undated.append(name)
                continue
            value = self._value(name, datatype, metric)
            if value is not None:
                ts = metric.timestamp_ms or message.timestamp_ms or None
                if ts not in readings:
                    readings[ts] = _reading(topic.source_device, ts, received_ns, raw)
                readings[ts].values.append(Offered(name, (name, _leaf(name)), _leaf(name),
                                                   value))
        for reading in readings.values():
            self.emit(out, reading, received_ns)
        self._problems(out, topic, raw, received_ns, unknown, undated, outdated)

    def _problems(self, out: Decoded, topic: Topic, raw: bytes, received_ns: int,
                  unknown: list[int], undated: list[str], outdated: bool) -> None:
        node = self._node(topic)
        if unknown and topic.type.endswith("BIRTH"):
            reject(out, Reason.BAD_SHAPE, f"{topic.type}: {len(unknown)} metric(s) without a "
                   "name (a birth must name every metric)", raw)
        elif unknown:
            aliases = ", ".join("none" if a < 0 else str(a) for a in unknown)
            self._no_birth(out, topic, node, raw, received_ns, f"has metrics its "
                           f"{topic.type[0]}BIRTH did not declare (alias {aliases})")
        elif outdated:
            self._rebirth(out, topic, node, received_ns, "a metric its birth did not declare")
        if undated:
            reject(out, Reason.BAD_TIMESTAMP, f"{topic.type}: historical metric "
                   f"{', '.join(sorted(undated))} has no timestamp of its own", raw)

    def _value(self, name: str, datatype: int | None, metric: Metric) -> float | bool | None:
        """The number to store, or None after counting why the metric is not stored."""
        if metric.null or metric.field == "":
            self.not_stored["null"] += 1
            return None
        if datatype is None:  # a birth without datatypes (out of spec): go by the value
            datatype = _inferred(metric)
        value = numeric(datatype, metric) if datatype in NUMERIC else None
        if value is None:
            self.not_stored[type_name(datatype)] += 1
            self.drop(name)
        return value

    # -- seq and rebirth -------------------------------------------------------------------
    def _sequence(self, out: Decoded, topic: Topic, node: Node, message: Payload,
                  received_ns: int) -> None:
        if message.seq is None:
            return  # out of spec, but nothing to check against
        expected = None if node.seq is None else (node.seq + 1) % 256
        node.seq = _seq(message.seq)
        if node.seq is None or (expected is not None and node.seq != expected):
            self._rebirth(out, topic, node, received_ns,
                          f"seq {message.seq} where {expected} was due")

    def _no_birth(self, out: Decoded, topic: Topic, node: Node, raw: bytes, received_ns: int,
                  why: str) -> None:
        where = topic.source_device
        reject(out, Reason.NO_BIRTH, f"{topic.type} of {where} (group {topic.group}) {why}; "
               "rebirth requested", raw)
        self._rebirth(out, topic, node, received_ns, f"{topic.type} {why}")

    def _rebirth(self, out: Decoded, topic: Topic, node: Node, received_ns: int,
                 why: str) -> None:
        last = node.last_rebirth_ns
        if last is not None and 0 <= received_ns - last < REBIRTH_INTERVAL_S * 1e9:
            return  # asked recently; the node's answer may be on its way
        node.last_rebirth_ns = received_ns
        self.rebirths_requested += 1
        out.replies.append((f"{NAMESPACE}/{topic.group}/NCMD/{topic.edge}",
                            rebirth_command(received_ns // 1_000_000)))
        log.info("asking Sparkplug edge node %s/%s for a rebirth: %s", topic.group,
                 topic.edge, why)

    def _node(self, topic: Topic) -> Node:
        key = (topic.group, topic.edge)
        node = self.nodes.get(key)
        if node is None:
            if len(self.nodes) >= MAX_NODES:
                forgotten = next(iter(self.nodes))
                del self.nodes[forgotten]
                if self._states is not None:
                    self._states.save(forgotten, None)
                log.warning("tracking %d Sparkplug edge nodes: forgot %s", MAX_NODES,
                            "/".join(forgotten))
            node = self.nodes[key] = Node()
        return node


def _seq(seq: int | None) -> int | None:
    return seq if seq is not None and 0 <= seq <= 255 else None


def _table(metrics: tuple[Metric, ...]) -> Table:
    table = Table()
    for m in metrics:
        if m.name is None:
            continue  # a birth names every metric; an unnamed one cannot be referred to
        table.by_name[m.name] = m.datatype
        if m.alias is not None:
            table.by_alias[m.alias] = (m.name, m.datatype)
    return table


def _lookup(table: Table, metric: Metric) -> tuple[str, int | None, bool] | None:
    """(name, datatype, declared by the birth), or None when the metric cannot be named."""
    if metric.alias is not None and metric.alias in table.by_alias and metric.name is None:
        name, datatype = table.by_alias[metric.alias]
        return name, metric.datatype or datatype, True
    if metric.name is not None:
        known = metric.name in table.by_name
        return metric.name, metric.datatype or table.by_name.get(metric.name), known
    return None


def _inferred(metric: Metric) -> int:
    if isinstance(metric.value, bool):
        return DataType.BOOLEAN
    if isinstance(metric.value, float):
        return DataType.DOUBLE
    if isinstance(metric.value, int):
        return DataType.UINT64
    return DataType.UNKNOWN


def _leaf(name: str) -> str:
    return name.rsplit("/", 1)[-1] or name


def _reading(device: str, ts_ms: int | None, received_ns: int, raw: bytes = b"") -> Reading:
    if ts_ms:
        return Reading(device, ts_ms * 1_000_000, TimeSource.DEVICE, raw=raw)
    return Reading(device, received_ns, TimeSource.RECEIVED, raw=raw)
