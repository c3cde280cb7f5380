"""The collector's fast MQTT 5 subscriber: asyncio streams and the `mqtt5` packet codec.

Why not paho here: on this 2-core machine a bare paho subscriber that only counts receives
about 16,000 MQTT 5 messages/s (51 µs of CPU each, bench/README.md), which is the whole
budget of a 20,000 readings/s collector before a single byte is decoded. `mqtt5` (a sans-I/O
MQTT 5 codec in Rust, by the maintainer of aiomqtt) reads a PUBLISH in about 1.5 µs and writes
a PUBACK in under 1 µs; what is left to write by hand is the small connection state machine
below (CONNECT, SUBSCRIBE, keepalive, reconnect), run in the collector's own event loop, so
no thread hand-off either. It only speaks MQTT 5; `ingest.mqtt.Subscriber` falls back to paho
with MQTT 3.1.1 (`ingest.mqtt.paho`) for brokers that do not (the demo's embedded one).

Manual acknowledgement, as on the paho path: `take()` hands out messages in arrival order,
`ack()` sends their PUBACKs once the caller made them durable. Acks for messages of an
earlier connection are never sent (the broker redelivers those, and may reuse their ids).
`publish()` honours its QoS: a QoS 1 or 2 message is kept until the broker confirmed it and
sent again after a reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Self

import mqtt5

from ingest.mqtt.drops import fatal_refusals
from ingest.mqtt.inbox import Inbox, Message
from ingest.mqtt.options import (
    BrokerUrl,
    ConnectionState,
    MqttOptions,
    client_tls,
    reconnect_delay_s,
)

log = logging.getLogger(__name__)


class ProtocolRefused(ConnectionError):
    """The broker does not speak MQTT 5 (refused, or never answered the CONNECT)."""


def salvage(view: memoryview, error: Exception, generation: int) -> tuple[Message | None, int]:
    """Cut one packet the codec refused out of the stream: (message, bytes used).

    A PUBLISH with, say, a payload flagged UTF-8 that is not, would otherwise stall the
    connection (the broker redelivers it after every reconnect). Its topic, packet id and
    payload are read by hand, so it reaches the decoder (and becomes a dead letter) and gets
    its PUBACK; any other packet is skipped. (0 bytes: the packet is not complete yet.)
    """
    if len(view) < 2:
        return None, 0
    length, shift, i = 0, 0, 1
    while True:
        if i > 4:
            raise ValueError("malformed MQTT remaining length") from error
        if i >= len(view):
            return None, 0
        byte = view[i]
        length |= (byte & 0x7F) << shift
        shift += 7
        i += 1
        if byte < 0x80:
            break
    end = i + length
    if len(view) < end:
        return None, 0
    if view[0] >> 4 != 3:
        log.warning("skipped an MQTT packet the codec refused: %s", error)
        return None, end
    qos = (view[0] >> 1) & 3
    body = bytes(view[i:end])
    tlen = int.from_bytes(body[:2], "big")
    topic = body[2:2 + tlen].decode("utf-8", "replace")
    pos = 2 + tlen
    mid = int.from_bytes(body[pos:pos + 2], "big") if qos else 0
    pos += 2 if qos else 0
    plen, shift = 0, 0
    while pos < len(body):
        byte = body[pos]
        pos += 1
        plen |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            break
    log.warning("PUBLISH on %r refused by the codec (%s): passed on as received", topic, error)
    return Message(topic, body[pos + plen:], time.time_ns(), mid, qos, generation), end


@dataclass(slots=True)
class _Outgoing:
    """A QoS 1/2 publish the broker has not confirmed yet (`released`: PUBREC seen)."""

    topic: str
    payload: bytes
    qos: int
    released: bool = False

    def packet(self, packet_id: int) -> bytes:
        if self.released:
            return mqtt5.PubRelPacket(packet_id).write()
        return mqtt5.PublishPacket(self.topic, self.payload, qos=mqtt5.QoS(self.qos),
                                   packet_id=packet_id, duplicate=True).write()


class StreamSubscriber(Inbox, ConnectionState):
    """The MQTT 5 subscription on asyncio streams: the manual-ack interface of
    `ingest.mqtt.paho.PahoSubscriber`, without a thread."""

    PROBE_S = 3.0  # a broker that has not answered CONNECT by then does not speak MQTT 5
    MAX_OUTGOING = 1000  # unconfirmed QoS 1/2 publishes kept for resending

    def __init__(self, options: MqttOptions, filters: list[str]) -> None:
        super().__init__(high_water=options.receive_maximum)  # the pump waits in `room()`
        self.options = options
        self.filters = filters
        self.protocol = "5"
        self.broker: BrokerUrl = options.broker
        self._connected = asyncio.Event()
        self._generation = 0
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None
        self._next_id = 0
        self._last_in = 0.0
        self._outgoing: dict[int, _Outgoing] = {}  # by packet id, in the order sent
        self._send_quota = 1  # the broker's Receive Maximum, from its CONNACK
        self._max_qos = 0  # the broker's Maximum QoS, from its CONNACK

    # -- lifecycle -------------------------------------------------------------------------
    async def probe(self) -> None:
        """Connect once; raise ProtocolRefused when the broker will not speak MQTT 5.
        Other connection errors pass: the supervisor keeps retrying them."""
        try:
            async with asyncio.timeout(self.PROBE_S):
                reader, writer = await self._open()
                await self._handshake(reader, writer)
        except TimeoutError:
            raise ProtocolRefused(f"{self.broker} did not answer an MQTT 5 CONNECT") from None
        except OSError:
            self._task = asyncio.create_task(self._supervise(None), name="mqtt5-session")
            return
        self._task = asyncio.create_task(self._supervise((reader, writer)), name="mqtt5-session")

    async def __aenter__(self) -> Self:
        await self.probe()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                writer.write(mqtt5.DisconnectPacket().write())
                await writer.drain()
                # Let the broker close first: closing with unread bytes in our receive
                # buffer sends a RST, and the broker may then drop the PUBACKs it has not
                # processed yet (seen: acked messages redelivered after a clean stop).
                async with asyncio.timeout(2.0):
                    while await self._reader.read(1 << 16):
                        pass
            writer.close()
        self._connected.clear()

    # -- the connection --------------------------------------------------------------------
    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        context = client_tls(self.broker, self.options.ca_file, self.options.tls_insecure)
        return await asyncio.open_connection(self.broker.host, self.broker.port, ssl=context,
                                             limit=1 << 20)

    async def _handshake(self, reader: asyncio.StreamReader,
                         writer: asyncio.StreamWriter) -> None:
        o, b = self.options, self.broker
        # A new generation before anything arrives: a resumed session redelivers its
        # unacknowledged messages right after CONNACK, before the SUBACK, and those must be
        # acknowledged on this connection.
        self._generation += 1
        connect = mqtt5.ConnectPacket(
            o.client_id, username=b.username,
            password=b.password.encode() if b.password is not None else None,
            clean_start=False, keep_alive=o.keepalive_s,
            session_expiry_interval=int(o.session_expiry_s),
            receive_max=max(1, min(65535, o.receive_maximum)))
        writer.write(connect.write())
        buffer = bytearray()
        try:
            connack = await self._read_one(reader, buffer)
        except ValueError:  # an MQTT 3.1.1 CONNACK does not parse as MQTT 5
            raise ProtocolRefused(f"{b} answered CONNECT in another protocol") from None
        if not isinstance(connack, mqtt5.ConnAckPacket):
            raise ProtocolRefused(f"{b} answered CONNECT with {type(connack).__name__}")
        if connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
            if connack.reason_code == mqtt5.ConnAckReasonCode.UNSUPPORTED_PROTOCOL_VERSION:
                raise ProtocolRefused(f"{b} refused MQTT 5")
            raise ConnectionRefusedError(f"{b} refused the connection: {connack.reason_code}")
        subscribe = mqtt5.SubscribePacket(
            self._new_id(), [mqtt5.TopicFilter(f, max_qos=mqtt5.QoS.AT_LEAST_ONCE)
                            for f in self.filters])
        writer.write(subscribe.write())
        while not isinstance(packet := await self._read_one(reader, buffer), mqtt5.SubAckPacket):
            self._handle(packet, buffer)  # a resumed session may deliver before the SUBACK
        refused = fatal_refusals([f for f, r in zip(self.filters, packet.reason_codes,
                                                    strict=False) if r.value >= 0x80])
        if refused:
            raise ConnectionRefusedError(f"{b} refused the subscription to "
                                         f"{', '.join(refused)} (check the ACL)")
        self._send_quota = min(connack.receive_max, self.MAX_OUTGOING)
        self._max_qos = int(connack.max_qos.value)
        self._writer = writer
        self._reader, self._buffer = reader, buffer
        self._last_in = time.monotonic()
        # Unconfirmed publishes go again, in their order (MQTT 5 4.4: with the DUP flag).
        if self._outgoing:
            writer.write(b"".join(out.packet(pid) for pid, out in self._outgoing.items()))
        self._connected.set()
        log.info("connected to %s as %r (MQTT 5, session present: %s), subscribed to %s", b,
                 o.client_id, connack.session_present, ", ".join(self.filters))

    async def _read_one(self, reader: asyncio.StreamReader,
                        buffer: bytearray) -> mqtt5.Packet:
        while True:
            try:
                packet, n = mqtt5.read(memoryview(buffer))
            except IndexError:  # not enough bytes yet
                chunk = await reader.read(1 << 16)
                if not chunk:
                    raise ConnectionResetError(f"{self.broker} closed the connection") from None
                buffer.extend(chunk)
                continue
            del buffer[:n]
            return packet

    async def _supervise(self, first: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None
                         ) -> None:
        attempt = 0
        while True:
            delay = reconnect_delay_s(attempt, random.random())
            try:
                if first is None:
                    reader, writer = await self._open()
                    await self._handshake(reader, writer)
                first = None
                attempt = 0
                delay = reconnect_delay_s(attempt, random.random())
                await self._pump()
            except (OSError, ValueError) as exc:
                log.warning("MQTT connection to %s lost (%s); reconnecting in %.1f s",
                            self.broker, exc, delay)
            self._connected.clear()
            self._generation += 1  # acks of the old connection must never be sent
            writer_, self._writer = self._writer, None
            if writer_ is not None:
                writer_.close()
            first = None
            await asyncio.sleep(delay)
            attempt += 1

    async def _pump(self) -> None:
        """Read packets until the connection ends; ping when idle."""
        pinger = asyncio.create_task(self._keepalive(), name="mqtt5-keepalive")
        try:
            reader, buffer = self._reader, self._buffer
            while True:
                if await self.room():  # we stopped reading, not the broker
                    self._last_in = time.monotonic()
                chunk = await reader.read(1 << 18)
                if not chunk:
                    raise ConnectionResetError(f"{self.broker} closed the connection")
                self._last_in = time.monotonic()
                buffer.extend(chunk)
                view = memoryview(buffer)
                offset = 0
                try:
                    while True:
                        try:
                            packet, n = mqtt5.read(view[offset:])
                        except IndexError:
                            break
                        except ValueError as exc:  # a PUBLISH the codec judges invalid
                            salvaged, n = salvage(view[offset:], exc, self._generation)
                            if n == 0:
                                break
                            offset += n
                            if salvaged is not None:
                                self.put(salvaged)
                            continue
                        offset += n
                        self._handle(packet, buffer)
                finally:
                    view.release()
                    del buffer[:offset]
        finally:
            pinger.cancel()

    def _handle(self, packet: mqtt5.Packet, buffer: bytearray) -> None:
        if isinstance(packet, mqtt5.PublishPacket):
            qos = int(packet.qos.value)
            self.put(Message(packet.topic, packet.payload, time.time_ns(),
                             packet.packet_id or 0, qos, self._generation))
        elif isinstance(packet, mqtt5.PubAckPacket | mqtt5.PubCompPacket):
            self._confirmed(self._outgoing.pop(packet.packet_id, None), packet)
        elif isinstance(packet, mqtt5.PubRecPacket):
            out = self._outgoing.get(packet.packet_id)
            if out is not None and packet.reason_code.value >= 0x80:
                self._confirmed(self._outgoing.pop(packet.packet_id), packet)
            elif out is not None:
                out.released = True
                if self._writer is not None:
                    self._writer.write(mqtt5.PubRelPacket(packet.packet_id).write())
        elif isinstance(packet, mqtt5.DisconnectPacket):
            raise ConnectionResetError(f"{self.broker} disconnected us: {packet.reason_code}")

    def _confirmed(self, out: _Outgoing | None,
                   packet: mqtt5.PubAckPacket | mqtt5.PubRecPacket | mqtt5.PubCompPacket
                   ) -> None:
        if out is not None and packet.reason_code.value >= 0x80:
            log.warning("the broker refused the publish to %s: %s", out.topic,
                        packet.reason_code.name)

    def _new_id(self) -> int:
        """A packet id not used by an unconfirmed publish."""
        while True:
            self._next_id = self._next_id % 65535 + 1
            if self._next_id not in self._outgoing:
                return self._next_id

    async def _keepalive(self) -> None:
        interval = max(1.0, self.options.keepalive_s / 2)
        while True:
            await asyncio.sleep(interval)
            writer = self._writer
            if writer is None:
                return
            if not self.full and \
                    time.monotonic() - self._last_in > self.options.keepalive_s * 1.5:
                log.warning("no traffic from %s for %.0f s; reconnecting", self.broker,
                            time.monotonic() - self._last_in)
                writer.close()
                return
            writer.write(mqtt5.PingReqPacket().write())

    # -- the consumer side (take/take_nowait/interrupt: Inbox) ------------------------------
    def ack(self, messages: list[Message]) -> int:
        writer = self._writer
        if writer is None:
            return 0
        gen = self._generation
        acks = [mqtt5.PubAckPacket(m.mid).write() for m in messages
                if m.qos and m.generation == gen]
        if acks:
            writer.write(b"".join(acks))
        return len(acks)

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        """Send a message on this connection (Sparkplug rebirth requests) at `qos`: fire and
        forget for the caller, but a QoS 1 or 2 message is kept until the broker confirms it
        and sent again after a reconnect.

        Never raises for the network: when disconnected, or with as many unconfirmed as the
        broker's Receive Maximum, the message is logged and dropped; whoever asked will ask
        again (a rebirth is requested again at the next gap).
        """
        if qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {qos!r}")
        writer = self._writer
        if writer is None:
            log.warning("not connected: dropped the publish to %s", topic)
            return
        if qos > self._max_qos:  # MQTT 5 3.2.2.3.4: never above the broker's Maximum QoS
            log.warning("%s accepts QoS %d at most: the publish to %s goes with it",
                        self.broker, self._max_qos, topic)
            qos = self._max_qos
        if qos == 0:
            writer.write(mqtt5.PublishPacket(topic, payload).write())
            return
        if len(self._outgoing) >= self._send_quota:  # the broker's Receive Maximum
            log.warning("%d publishes unconfirmed: dropped the publish to %s",
                        len(self._outgoing), topic)
            return
        packet_id = self._new_id()
        self._outgoing[packet_id] = _Outgoing(topic, payload, qos)
        writer.write(mqtt5.PublishPacket(topic, payload, qos=mqtt5.QoS(qos),
                                         packet_id=packet_id).write())
