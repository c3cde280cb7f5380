"""`citypilot deadletters replay`: a LoRaWAN uplink dead-lettered for want of a codec is stored
once the source names its codec, and replaying twice stores nothing twice."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from ingest.stores import open_reader
from tests.collectors import collector
from tests.mqttclient import publish
from tests.servers import Mosquitto
from tests.support import eventually, stored_count

SOURCE = {"name": "ttn-test", "format": "ttn-v3", "topic": "v3/+/devices/+/up",
          "pilot": "lisbon"}


def uplink(device: str, when: datetime, celsius_tenths: int) -> bytes:
    lpp = bytes([1, 0x67]) + celsius_tenths.to_bytes(2, "big")  # CayenneLPP temperature
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return orjson.dumps({"end_device_ids": {"device_id": device}, "received_at": stamp,
                         "uplink_message": {"frm_payload": base64.b64encode(lpp).decode(),
                                            "received_at": stamp}})


def replay(tmp: Path, store_url: str, conf: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYPILOT_")}
    env.update(CITYPILOT_STORE_URL=store_url, CITYPILOT_CONFIG=str(conf))
    out = subprocess.run([sys.executable, "-m", "citypilot", "deadletters", "replay",
                          "--reason", "no_codec"], env=env, cwd=tmp, capture_output=True,
                         timeout=60, check=True)
    return orjson.loads(out.stdout)  # type: ignore[no-any-return]


async def test_replay_after_fixing_the_codec(mosquitto: Mosquitto, sqlite_url: str,
                                             tmp_path: Path) -> None:
    now = datetime.now(UTC)
    messages = [(f"v3/app@ttn/devices/node-{i}/up", uplink(f"node-{i}", now, 200 + i))
                for i in range(3)]
    async with collector(mosquitto.url, sqlite_url, tmp_path / "spool", sources=[SOURCE]):
        await asyncio.to_thread(publish, mosquitto.url, messages)

        async def three_letters() -> bool:
            async with open_reader(sqlite_url) as st:
                got = await st.dead_letters(reason="no_codec")
            assert len(got) == 3, got
            return True

        await eventually(three_letters, timeout=20)
    conf = tmp_path / "citypilot.toml"
    conf.write_text('[[sources]]\nname = "ttn-test"\nformat = "ttn-v3"\n'
                    'topic = "v3/+/devices/+/up"\npilot = "lisbon"\ncodec = "cayenne-lpp"\n')
    first = await asyncio.to_thread(replay, tmp_path, sqlite_url, conf)
    assert first["examined"] == 3 and first["recovered"] == 3 and first["still_failing"] == {}
    again = await asyncio.to_thread(replay, tmp_path, sqlite_url, conf)
    assert again["recovered"] == 3
    assert await stored_count(sqlite_url, "sensor", "temperature", pilot="lisbon") == 3
