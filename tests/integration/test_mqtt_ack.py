"""Manual acknowledgement through citypilot's own subscribers (`ingest.mqtt.Subscriber`, on
its MQTT 5 stream path and on its paho 3.1.1 fallback) against a stock-configured Mosquitto.

The consumer marks what is durable by acking it; only those messages may be acknowledged to
the broker, so everything else must come back after a reconnect. If an upgrade of an MQTT
library starts acking on receipt, or stops honouring our Receive Maximum, these tests fail.
Absence is shown without sleeping: after a reconnect a fence message is published, and the
broker delivers it only after everything it still had for us.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from ingest.mqtt import Message, MqttOptions, Subscriber
from tests.mqttclient import Recorder, publish
from tests.servers import Mosquitto
from tests.support import eventually

FENCE = b"fence"


async def take_until(sub: Subscriber, done: Callable[[list[Message]], bool],
                     within_s: float = 20.0) -> list[Message]:
    """Messages as `take()` hands them out, in arrival order, until `done(got)`."""
    got: list[Message] = []

    async def loop() -> None:
        while not done(got):
            got.extend(await sub.take(1000, 0.05))

    await asyncio.wait_for(loop(), within_s)
    return got


def numbers(messages: list[Message]) -> list[int]:
    return [int(m.payload) for m in messages]


async def after_reconnect(opts: MqttOptions, topic: str, fence_topic: str,
                          ack: bool = True) -> list[Message]:
    """Connect again with the same session; what the broker delivers before the fence
    (acked as it arrives when `ack`: the consumer made it durable)."""
    async with Subscriber(opts, [topic]) as sub:
        await sub.wait_connected(15)
        await asyncio.to_thread(publish, opts.url, [(fence_topic, FENCE)])
        seen: list[Message] = []

        async def drain() -> None:
            while not seen or seen[-1].payload != FENCE:
                batch = await sub.take(1000, 0.05)
                if ack:
                    assert sub.ack(batch) == len(batch)
                seen.extend(batch)

        await asyncio.wait_for(drain(), 20)
        return seen[:-1]


async def test_mqtt5_path_acks_only_what_the_consumer_marks_durable(
        mosquitto: Mosquitto, prefix: str) -> None:
    topic, fence = f"ack/{prefix}/#", f"ack/{prefix}/fence"
    opts = MqttOptions(mosquitto.url, f"ack-{prefix}", receive_maximum=5000)
    async with Subscriber(opts, [topic]) as sub:
        await sub.wait_connected(15)
        assert sub.protocol == "5"
        sent = [(f"ack/{prefix}/{i}", str(i).encode()) for i in range(1000)]
        await asyncio.to_thread(publish, mosquitto.url, sent)
        # All 1000 arrive, in order, while none is acknowledged: the broker honours our
        # Receive Maximum, far above the 20 in flight it allows an MQTT 3.1.1 subscriber.
        held = await take_until(sub, lambda got: len(got) >= 1000)
        assert numbers(held) == list(range(1000))
        # Durable: 0-299 and 500-999; 300-499 are not (say, their store write failed).
        assert sub.ack(held[:300]) == 300
        assert sub.ack(held[500:]) == 500
    # Exactly the unacknowledged ones come back, in order, before the fence.
    assert numbers(await after_reconnect(opts, topic, fence)) == list(range(300, 500))
    # Those were acknowledged on the second connection: the third sees only its fence.
    assert await after_reconnect(opts, topic, fence) == []


async def test_mqtt5_path_never_acks_on_receipt(mosquitto: Mosquitto, prefix: str) -> None:
    """Taken but never acked (the collector crashed before the store write): all of it is
    redelivered, every time, until acknowledged."""
    topic, fence = f"noack/{prefix}/#", f"noack/{prefix}/fence"
    opts = MqttOptions(mosquitto.url, f"noack-{prefix}")
    async with Subscriber(opts, [topic]) as sub:
        await sub.wait_connected(15)
        await asyncio.to_thread(publish, mosquitto.url,
                                [(f"noack/{prefix}/{i}", str(i).encode()) for i in range(50)])
        assert numbers(await take_until(sub, lambda got: len(got) >= 50)) == list(range(50))
    again = await after_reconnect(opts, topic, fence, ack=False)
    assert numbers(again) == list(range(50))


async def test_paho_311_path_acks_only_what_it_is_told(mosquitto: Mosquitto, prefix: str) -> None:
    """The fallback for brokers without MQTT 5 keeps the same promise. With MQTT 3.1.1 the
    broker holds back everything beyond 20 unacknowledged messages, so more arriving after
    our acks shows that they reached it (Mosquitto 2.0.11 then sends the whole rest)."""
    topic, fence = f"ack311/{prefix}/#", f"ack311/{prefix}/fence"
    opts = MqttOptions(mosquitto.url, f"ack311-{prefix}", protocol="3.1.1")
    async with Subscriber(opts, [topic]) as sub:
        await sub.wait_connected(15)
        assert sub.protocol == "3.1.1"
        await asyncio.to_thread(publish, mosquitto.url,
                                [(f"ack311/{prefix}/{i}", str(i).encode()) for i in range(100)])
        held = await take_until(sub, lambda got: len(got) >= 20)  # the broker's limit
        assert numbers(held)[:20] == list(range(20))
        assert sub.ack(held[:10]) == 10
        more = await take_until(sub, lambda got: len(got) >= 1)  # the acks reached the broker
        assert numbers(held + more)[:21] == list(range(21))
    rest = numbers(await after_reconnect(opts, topic, fence))
    # Everything not acknowledged comes back: at least once, nothing lost. Unlike the MQTT 5
    # path, a few acknowledged ones sometimes come back too (paho 2.2 with Mosquitto 2.0.11,
    # about 1 run in 5; duplicates are stored once): not asserted.
    assert set(range(10, 100)) <= set(rest) <= set(range(100))


@pytest.mark.parametrize("protocol", ["auto", "3.1.1"])
@pytest.mark.parametrize("qos", [0, 1, 2])
async def test_publish_sends_the_qos_it_is_given(mosquitto: Mosquitto, prefix: str,
                                                 protocol: str, qos: int) -> None:
    """`Subscriber.publish(..., qos=)` (Sparkplug rebirth requests) on either path: a QoS 2
    subscriber receives each message with the QoS it was published with."""
    topic = f"pubqos/{prefix}/{protocol}/{qos}"
    recorder = Recorder(mosquitto.url, topic, qos=2)
    try:
        opts = MqttOptions(mosquitto.url, f"pubqos-{prefix}", protocol=protocol)
        async with Subscriber(opts, [f"pubqos/{prefix}/unused"]) as sub:
            await sub.wait_connected(15)
            for i in range(3):
                sub.publish(topic, str(i).encode(), qos=qos)
            await eventually(lambda: len(recorder.qos_seen) >= 3, timeout=10)
        assert recorder.messages == [(topic, str(i).encode()) for i in range(3)]
        assert recorder.qos_seen == [qos] * 3
    finally:
        recorder.close()


async def test_mqtt5_inbox_stays_bounded_when_the_broker_overshoots_receive_maximum(
        mosquitto: Mosquitto, prefix: str) -> None:
    """Mosquitto 2.0 sends far past our Receive Maximum once part of the window is acked
    (10 allowed, 5 acked at a time: 1,810 messages queued in the collector's memory before
    the inbox bounded itself). The subscriber stops reading above it, so what it holds is the
    Receive Maximum plus one read of the socket (256 KB); the broker keeps the rest, and
    everything arrives once taken."""
    topic = f"rm/{prefix}/#"
    opts = MqttOptions(mosquitto.url, f"rm-{prefix}", receive_maximum=10)
    payload_size, total = 4000, 3000
    async with Subscriber(opts, [topic]) as sub:
        await sub.wait_connected(15)
        sent = [(f"rm/{prefix}/{i}", str(i).encode().ljust(payload_size)) for i in range(total)]
        await asyncio.to_thread(publish, mosquitto.url, sent)
        await eventually(lambda: sub.backlog >= 10, timeout=20)
        got: list[Message] = []
        peak = 0
        for _ in range(40):  # a slow consumer: five at a time
            batch = sub.take_nowait(5)
            assert sub.ack(batch) == len(batch)
            got += batch
            await asyncio.sleep(0.05)
            peak = max(peak, sub.backlog)
        assert peak <= 10 + (1 << 18) // payload_size + 1, peak

        async def rest() -> None:
            while len(got) < total:
                batch = await sub.take(1000, 0.05)
                assert sub.ack(batch) == len(batch)
                got.extend(batch)
        await asyncio.wait_for(rest(), 60)
    assert [int(m.payload) for m in got] == list(range(total))
