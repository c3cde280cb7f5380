"""Manual acknowledgement through ingest/mqtt.py against a stock-configured Mosquitto.

If an upgrade of the MQTT library starts acking on receipt, or stops honouring our Receive
Maximum, these tests fail: unacknowledged messages must come back after a reconnect, and an
MQTT 5 subscriber must be able to hold far more than Mosquitto's 3.1.1 in-flight default (20).
"""

from __future__ import annotations

import asyncio

from ingest.mqtt import Message, MqttOptions, PahoSubscriber, Subscriber
from tests.mqttclient import publish
from tests.servers import Mosquitto


async def take_all(sub: Subscriber | PahoSubscriber, n: int,
                   within_s: float = 20.0) -> list[Message]:
    got: list[Message] = []

    async def loop() -> None:
        while len(got) < n:
            got.extend(await sub.take(n - len(got), 0.05))

    await asyncio.wait_for(loop(), within_s)
    return got


async def test_unacked_messages_come_back_and_acked_ones_do_not(mosquitto: Mosquitto,
                                                                prefix: str) -> None:
    topic = f"ack/{prefix}/#"
    opts = MqttOptions(mosquitto.url, f"ack-{prefix}", receive_maximum=5000)
    async with Subscriber(opts, [topic]) as sub:
        await sub.wait_connected()
        sent = [(f"ack/{prefix}/{i}", str(i).encode()) for i in range(1000)]
        await asyncio.to_thread(publish, mosquitto.url, sent)
        # All 1000 arrive while none is acknowledged: the broker honours Receive Maximum,
        # far above the 20 in flight it allows an MQTT 3.1.1 subscriber.
        held = await take_all(sub, 1000)
        assert sorted(int(m.payload) for m in held) == list(range(1000))
        assert sub.ack(held[:300]) == 300  # the PUBACKs leave before the DISCONNECT
    async with Subscriber(opts, [topic]) as again:
        await again.wait_connected()
        redelivered = await take_all(again, 700)
        assert sorted(int(m.payload) for m in redelivered) == list(range(300, 1000))
        again.ack(redelivered)
        await asyncio.sleep(0.5)  # an absence: give a wrong extra delivery time to show up
        assert again.take_nowait(10) == []


async def test_mqtt_311_subscriber_is_limited_by_the_broker(mosquitto: Mosquitto,
                                                            prefix: str) -> None:
    """The contrast that motivates MQTT 5: the stock broker gives a 3.1.1 subscriber 20."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    got: list[int] = []
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"v311-{prefix}",
                    clean_session=True, manual_ack=True)
    c.on_message = lambda cl, ud, msg: got.append(msg.mid)
    c.connect("127.0.0.1", mosquitto.port)
    c.subscribe(f"v311/{prefix}/#", qos=1)
    c.loop_start()
    try:
        from tests.support import eventually

        await eventually(lambda: c.is_connected(), timeout=10)
        await asyncio.sleep(0.2)  # SUBACK has no event in this bare client
        await asyncio.to_thread(publish, mosquitto.url,
                                [(f"v311/{prefix}/{i}", b"x") for i in range(200)])
        await eventually(lambda: len(got) >= 20, timeout=10)
        await asyncio.sleep(0.5)  # an absence: more than 20 would arrive now if allowed
        assert len(got) == 20
    finally:
        c.disconnect()
        c.loop_stop()


async def test_paho_311_path_acks_only_what_it_is_told(mosquitto: Mosquitto, prefix: str) -> None:
    """The fallback for brokers without MQTT 5 keeps the same promise. With MQTT 3.1.1 the
    broker holds back everything beyond 20 unacknowledged messages, so more arriving after
    our acks shows that they reached it (Mosquitto 2.0.11 then sends the whole rest)."""
    topic = f"ack311/{prefix}/#"
    opts = MqttOptions(mosquitto.url, f"ack311-{prefix}")
    async with PahoSubscriber(opts, [topic]) as sub:
        await sub.wait_connected()
        await asyncio.to_thread(publish, mosquitto.url,
                                [(f"ack311/{prefix}/{i}", str(i).encode()) for i in range(100)])
        held = await take_all(sub, 20)  # the broker's in-flight limit for MQTT 3.1.1
        assert sorted(int(m.payload) for m in held) == list(range(20))
        assert sub.ack(held[:10]) == 10
        more = await take_all(sub, 1)  # the acks reached the broker: it sends again
        assert int(more[0].payload) == 20
    async with PahoSubscriber(opts, [topic]) as again:
        await again.wait_connected()
        rest: list[Message] = []

        async def drain() -> None:
            while len({int(m.payload) for m in rest} & set(range(10, 100))) < 90:
                batch = await again.take(100, 0.05)
                again.ack(batch)
                rest.extend(batch)

        await asyncio.wait_for(drain(), 20)
        # Everything not acknowledged comes back: at least once, nothing lost. Unlike the
        # MQTT 5 path, a few acknowledged ones sometimes come back too (paho 2.2 with
        # Mosquitto 2.0.11, about 1 run in 5; duplicates are stored once): not asserted.
        again_seen = {int(m.payload) for m in rest}
        assert set(range(10, 100)) <= again_seen <= set(range(100))
