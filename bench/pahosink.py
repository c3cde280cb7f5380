"""A bare paho-mqtt subscriber that only counts: the ceiling of any Python MQTT consumer.

Run as its own process (`python -m bench.pahosink --port P --topic T --count N`): MQTT 5
(as the collector speaks it; `--protocol 3.1.1` for comparison), QoS 1, auto-ack, a Receive
Maximum as large as the collector's. It prints `ready` once the
broker confirmed the subscription, then, after N messages, one JSON line with the wall-clock
times of the first and last receipt and its own CPU seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


class Sink:
    def __init__(self, count: int) -> None:
        self.count, self.seen = count, 0
        self.first = self.last = 0.0
        self.subscribed = threading.Event()
        self.done = threading.Event()

    def on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        now = time.time()
        if not self.seen:
            self.first = now
        self.seen += 1
        self.last = now
        if self.seen >= self.count:
            self.done.set()

    def on_subscribe(self, client: paho.Client, userdata: Any, mid: int, reasons: Any,
                     properties: Any) -> None:
        self.subscribed.set()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--receive-maximum", type=int, default=10_000)
    parser.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
    args = parser.parse_args()
    sink = Sink(args.count)
    v5 = args.protocol == "5"
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-paho-{os.getpid()}",
                         protocol=MQTTProtocolVersion.MQTTv5 if v5 else
                         MQTTProtocolVersion.MQTTv311)
    client.on_message = sink.on_message
    client.on_subscribe = sink.on_subscribe
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.ReceiveMaximum = args.receive_maximum
    client.on_connect = lambda c, *_: c.subscribe(args.topic, qos=1)
    client.connect("127.0.0.1", args.port, keepalive=30, properties=props)
    client.loop_start()
    if not sink.subscribed.wait(15):
        sys.exit("no SUBACK within 15 s")
    print("ready", flush=True)
    finished = sink.done.wait(300)
    client.disconnect()
    client.loop_stop()
    cpu = os.times()
    print(json.dumps({"count": sink.seen, "first": sink.first, "last": sink.last,
                      "cpu_s": cpu.user + cpu.system}), flush=True)
    sys.exit(0 if finished else 1)


if __name__ == "__main__":
    main()
