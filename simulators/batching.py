"""paho-mqtt's client with fewer syscalls and allocations per message: the publisher's engine.

At 20,000 messages/s the cost per message is what counts, and paho spends it in three places:
one `send` per packet, three `recv` calls per PUBACK, and a `Properties` and two `ReasonCode`
objects built for each PUBACK. This subclass gathers the packets of a burst into one write
(`batching`, then `loop_write`), reads 64 KiB at a time, and decodes a plain PUBACK (no
properties) itself before handing it to paho's own `_do_on_publish`.

It overrides paho's private `_sock_send`, `_sock_recv` and `_handle_pubackcomp`, and uses
`_in_packet`, `_out_messages` and `_do_on_publish`. Should a paho release rename them, the
overrides go unused (the PUBACK shortcut checks for its names first) and publishing stays
correct, only slower; an integration test asserts that the batching and the acks still work.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

_READ_CHUNK = 65_536
_DISCONNECT = 0xE0
_NO_PROPERTIES = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]
_FAST_ACK_NEEDS = ("_in_packet", "_out_message_mutex", "_out_messages", "_do_on_publish")


@functools.cache
def puback_reason(code: int) -> ReasonCode:
    """The shared ReasonCode of a plain PUBACK; its cache hits show the lean path is taken."""
    return ReasonCode(PacketTypes.PUBACK, identifier=code)


class BatchingClient(mqtt.Client):
    """paho's client with fewer syscalls: packets gathered and written together, reads in
    big chunks. `batching` defers the writes paho attempts inside publish() to `loop_write`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batching = False
        self.coalesced = 0  # packets that went out in a shared write
        self._gather = False
        self._wbuf = bytearray()
        self._rbuf, self._rpos = b"", 0
        self._wsock: object = None
        self._rsock: object = None
        self._fast_ack = all(hasattr(self, name) for name in _FAST_ACK_NEEDS)

    def _handle_pubackcomp(self, cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        """A PUBACK without properties, decoded without building objects per ack."""
        packet = self._in_packet["packet"] if self._fast_ack else b""
        size = len(packet)
        if cmd != "PUBACK" or not (size in (2, 3) or (size == 4 and packet[3] == 0)):
            return super()._handle_pubackcomp(cmd)
        mid = packet[0] << 8 | packet[1]
        reason = puback_reason(packet[2] if size > 2 else 0)
        with self._out_message_mutex:
            if mid in self._out_messages:
                return self._do_on_publish(mid, reason, _NO_PROPERTIES)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def _sock_send(self, buf: bytes | bytearray) -> int:
        if self._wsock is not self._sock:  # a new connection: nothing old may go out on it
            self._wbuf.clear()
            self._wsock = self._sock
        if not self._gather or self._sock is None or buf[0] & 0xF0 == _DISCONNECT:
            # paho closes the socket right after a DISCONNECT: write it (and all before it) now
            if self._wbuf and not self.flush():
                raise ConnectionError("writing to the broker failed")
            return super()._sock_send(buf)
        self._wbuf += buf
        self.coalesced += 1
        return len(buf)

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        if self._rpos >= len(self._rbuf):
            self._rbuf, self._rpos = super()._sock_recv(_READ_CHUNK), 0
            if not self._rbuf:
                return b""
        chunk = self._rbuf[self._rpos:self._rpos + bufsize]
        self._rpos += len(chunk)
        return chunk

    def buffered_input(self) -> bool:
        return self._rsock is self._sock and self._rpos < len(self._rbuf)

    def flush(self) -> bool:
        """Write the gathered bytes; False when the connection broke."""
        sock = self._sock
        if self._wsock is not sock:  # gathered for a connection that is gone: drop them
            self._wbuf.clear()
            self._wsock = sock
        while self._wbuf and sock is not None:
            try:
                sent = sock.send(self._wbuf)
            except BlockingIOError:
                return True  # the rest goes when the socket is writable again
            except OSError as exc:
                log.warning("writing to the broker failed: %s", exc)
                return False
            del self._wbuf[:sent]
        return sock is not None

    def want_write(self) -> bool:
        return bool(self._wbuf) or super().want_write()

    def loop_write(self) -> MQTTErrorCode:
        if self.batching:  # called by publish() itself: the burst is written when it ends
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        self._gather = True
        try:
            rc = super().loop_write()  # hands every queued packet to _sock_send
        finally:
            self._gather = False
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and not self.flush():
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        return rc
