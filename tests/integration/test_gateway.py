"""The gateway agent against a real Mosquitto: store-and-forward through an uplink outage,
bounded spool with counted drops, the retained status and last will."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import orjson

from ingest.gateway import GatewayAgent, GatewayOptions, Uplink
from ingest.mqtt import MqttOptions
from tests.mqttclient import Recorder
from tests.servers import Mosquitto, free_port
from tests.support import eventually


def counter_source(n: int, devices: int, every_s: float, base: int | None = None
                   ) -> Callable[[], AsyncIterator[Uplink]]:
    """n readings round-robin over `devices`, one every `every_s`: reading i at ts base + i."""
    async def gen() -> AsyncIterator[Uplink]:
        start = int(time.time() * 1000) if base is None else base
        for i in range(n):
            doc = {"ts": start + i, "kind": "noise", "values": {"noise_laeq": i % 90}}
            yield f"dev-{i % devices}", "telemetry", orjson.dumps(doc)
            await asyncio.sleep(every_s)
    return gen


def options(broker: Mosquitto, tmp: Path, prefix: str, **kw: object) -> GatewayOptions:
    return GatewayOptions(pilot=prefix, gateway="gw-1",
                          upstream=MqttOptions(broker.url, f"gw-{prefix}"),
                          spool_dir=tmp / "gw-spool", heartbeat_s=0.5, **kw)  # type: ignore[arg-type]


def received(rec: Recorder, prefix: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for topic, payload in list(rec.messages):
        if topic.endswith("/telemetry"):
            doc = orjson.loads(payload)
            for d in doc if isinstance(doc, list) else [doc]:
                out.append({"device": topic.split("/")[4], **d})
    return out


async def test_uplink_outage_delivers_everything_in_order_per_device(
        make_mosquitto: Callable[..., Mosquitto], prefix: str, tmp_path: Path) -> None:
    broker = make_mosquitto()
    rec = Recorder(broker.url, f"citypilot/v1/{prefix}/#", client_id=f"rec-{prefix}",
                   clean=False)
    agent = GatewayAgent(options(broker, tmp_path, prefix),
                         [counter_source(600, 5, 0.01)])
    run = asyncio.create_task(agent.run(duration_s=40))
    await eventually(lambda: len(received(rec, prefix)) >= 50, timeout=20)
    broker.stop()
    outage_end = time.monotonic() + 30
    await eventually(lambda: agent.stats.generated == 600, timeout=40)
    await asyncio.sleep(max(0.0, outage_end - time.monotonic()))  # the outage itself
    broker.start()
    assert await asyncio.wait_for(run, 120) == 0
    await eventually(lambda: len(received(rec, prefix)) >= 600, timeout=30)
    got = received(rec, prefix)
    rec.close()
    # At least once: a message whose PUBACK was lost in the outage may come twice (the store
    # keeps it once); what counts is every reading, first seen in order per device.
    first: dict[tuple[object, object], dict[str, object]] = {}
    for d in got:
        first.setdefault((d["device"], d["ts"]), d)
    assert len(first) == 600
    for device in {d["device"] for d in got}:
        stamps = [ts for (dev, ts) in first if dev == device]
        assert stamps == sorted(stamps), f"{device} out of order"
    assert agent.stats.delivered == agent.stats.accepted == 600
    assert agent.stats.dropped == 0


async def test_full_spool_drops_oldest_and_counts(make_mosquitto: Callable[..., Mosquitto],
                                                  prefix: str, tmp_path: Path) -> None:
    broker = make_mosquitto()
    broker.stop()  # the uplink is down from the start: the agent still starts and spools
    base, total = int(time.time() * 1000) - 60_000, 2000
    agent = GatewayAgent(options(broker, tmp_path, prefix, spool_max_bytes=20_000,
                                 drain_timeout_s=0.5),
                         [counter_source(total, 4, 0, base)])
    code = await asyncio.wait_for(agent.run(duration_s=2), 60)
    assert code == 3  # drain timeout: the rest stays spooled
    # The uplink comes back: the next run of the agent forwards what the full spool kept.
    broker.start()
    rec = Recorder(broker.url, f"citypilot/v1/{prefix}/+/+/telemetry")
    try:
        drain = GatewayAgent(options(broker, tmp_path, prefix), [])
        assert await asyncio.wait_for(drain.run(duration_s=0), 60) == 0
        # Each device's records go oldest first: once its newest reading is in, all are.
        newest = set(range(total - 4, total))
        await eventually(lambda: newest <= set(_arrived(rec, prefix, base)), timeout=20)
        kept = _arrived(rec, prefix, base)
    finally:
        rec.close()
    # What survived is the newest readings, each once: the oldest were dropped, as many as
    # the agent reports dropped.
    assert 0 < len(kept) < total
    assert sorted(kept) == list(range(total - len(kept), total))
    assert agent.stats.dropped == total - len(kept)
    for device in range(4):
        mine = [i for i in kept if i % 4 == device]
        assert mine == sorted(mine), f"dev-{device} out of order"


def _arrived(rec: Recorder, prefix: str, base: int) -> list[int]:
    """The index (ts - base) of each reading the broker delivered, in arrival order; reading i
    came from dev-{i % 4}."""
    return [int(d["ts"]) - base for d in received(rec, prefix)]  # type: ignore[call-overload]


async def test_status_online_with_spool_depth_then_offline_on_shutdown(
        make_mosquitto: Callable[..., Mosquitto], prefix: str, tmp_path: Path) -> None:
    broker = make_mosquitto()
    agent = GatewayAgent(options(broker, tmp_path, prefix), [counter_source(5, 1, 0)])
    run = asyncio.create_task(agent.run())
    status = f"citypilot/v1/{prefix}/gw-1/gw-1/status"
    rec = Recorder(broker.url, status)
    await eventually(lambda: any(b'"online"' in p for _, p in rec.messages), timeout=20)
    assert b'"spool_depth"' in rec.messages[-1][1]
    rec.close()
    agent.stop()
    assert await asyncio.wait_for(run, 30) == 0
    late = Recorder(broker.url, status)  # retained: what a newcomer sees
    await eventually(lambda: late.messages and b'"offline"' in late.messages[-1][1], timeout=20)
    late.close()


async def test_readyz_and_metrics_tell_a_lost_uplink(
        make_mosquitto: Callable[..., Mosquitto], prefix: str, tmp_path: Path) -> None:
    """An operator on the site network sees from `/readyz` that the uplink is gone, and from
    `/metrics` what was taken and delivered (the agent's own counts)."""
    broker = make_mosquitto()
    port = free_port()
    agent = GatewayAgent(options(broker, tmp_path, prefix, metrics_port=port,
                                 metrics_host="127.0.0.1"), [counter_source(40, 2, 0.01)])
    run = asyncio.create_task(agent.run())
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as http:
        async def ready() -> dict[str, object]:
            try:
                answer = await http.get("/readyz")
            except httpx.ConnectError as exc:  # not listening yet
                raise AssertionError(exc) from exc
            assert answer.status_code == 200, answer.text
            return dict(answer.json())
        await eventually(ready, timeout=20)
        await eventually(lambda: agent.stats.delivered == 40, timeout=20)
        metrics = (await http.get("/metrics")).text
        assert "citypilot_gateway_delivered_messages_total 40.0" in metrics
        assert "citypilot_gateway_accepted_messages_total 40.0" in metrics
        assert "citypilot_gateway_uplink_connected 1.0" in metrics
        broker.stop()

        async def not_ready() -> dict[str, object]:
            answer = await http.get("/readyz")
            assert answer.status_code == 503, answer.text
            return dict(answer.json())
        down = await eventually(not_ready, timeout=20)
        assert down["uplink_connected"] is False and down["spool_ok"] is True
        assert "citypilot_gateway_uplink_connected 0.0" in (await http.get("/metrics")).text
        broker.start()
        await eventually(ready, timeout=30)
        assert (await http.get("/healthz")).json() == {"status": "ok"}
    agent.stop()
    assert await asyncio.wait_for(run, 30) == 0
