"""Decoding throughput per gateway format, on one core, the native format as the yardstick.

Run on purpose: `.venv/bin/python -m bench.decode_bench [--seconds 2]`. Each format decodes
its real sample from tests/data/payloads/ (Sparkplug B: an NDATA of 5 metrics by alias after
an NBIRTH) again and again in this process; messages/s and readings/s are printed, and the
ratio to the native format's messages/s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from ingest.decode import Decoder, Limits
from ingest.decode import sparkplug_b_pb2 as pb
from ingest.decode.preview import SAMPLE_TOPICS
from ingest.decode.sources import adhoc_source, decoder_for

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "data" / "payloads"


def native() -> tuple[str, bytes]:
    now = time.time_ns() // 1_000_000
    return SAMPLE_TOPICS["citypilot"], orjson.dumps(
        {"ts": now, "kind": "air_quality",
         "values": {"pm25": 12.4, "pm10": 20.1, "no2": 31.0, "o3": 40.2, "temperature": 15.5}})


def sparkplug(decoder: Decoder) -> tuple[str, bytes]:
    def message(seq: int, birth: bool) -> bytes:
        p = pb.Payload(timestamp=time.time_ns() // 1_000_000, seq=seq)
        for i in range(5):
            m = p.metrics.add()
            m.alias, m.datatype, m.double_value = i + 1, 10, 20.0 + i
            if birth:
                m.name = f"sensor/value{i}"
        if birth:
            bd = p.metrics.add()
            bd.name, bd.datatype, bd.long_value = "bdSeq", 8, 0
        return p.SerializeToString()  # type: ignore[no-any-return]

    decoder("spBv1.0/bench/NBIRTH/edge-1", message(0, True), time.time_ns())
    # The seq check would ask for rebirths on repeats; a fixed seq-1 NDATA is still decoded.
    return "spBv1.0/bench/NDATA/edge-1", message(1, False)


CASES: dict[str, tuple[str, str | None]] = {  # format -> (sample file, timezone)
    "ttn-v3": ("ttn-v3-uplink.json", None),
    "chirpstack-v4": ("chirpstack-v4-up.json", None),
    "zigbee2mqtt": ("zigbee2mqtt-wsdcgq11lm.json", None),
    "tasmota": ("tasmota-tele-sensor-bme280.json", "Europe/Lisbon"),
    "influx-lp": ("telegraf-mqtt-influx.lp", None),
}


def rate(decode: Callable[[], int], seconds: float) -> tuple[float, float]:
    n = readings = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        for _ in range(100):
            readings += decode()
        n += 100
    took = time.perf_counter() - start
    return n / took, readings / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    rows: list[tuple[str, float, float]] = []
    formats = ["citypilot", *CASES, "sparkplug-b"]
    for fmt in formats:
        decoder = decoder_for(adhoc_source(fmt, CASES.get(fmt, ("", None))[1]), Limits())
        if fmt == "citypilot":
            topic, payload = native()
        elif fmt == "sparkplug-b":
            topic, payload = sparkplug(decoder)
        else:
            topic, payload = SAMPLE_TOPICS[fmt], (SAMPLES / CASES[fmt][0]).read_bytes()
            if fmt == "influx-lp":  # the sample has no host tag: name one, as a mapping would
                payload = payload.replace(b"modbus,", b"modbus,host=depot,")

        def once(d: Decoder = decoder, t: str = topic, p: bytes = payload) -> int:
            out = d(t, p, time.time_ns())
            return sum(len([f for f in pt.fields if f not in ("ingest_delay_s", "time_source")])
                       for pt in out.points)

        assert once() > 0, f"{fmt}: the benchmark payload decodes to nothing"
        msgs, readings = rate(once, args.seconds)
        rows.append((fmt, msgs, readings))
    yardstick = rows[0][1]
    print("| format | messages/s | values/s | ÷ native messages/s |\n|---|---|---|---|")
    for fmt, msgs, readings in rows:
        print(f"| {fmt} | {msgs:,.0f} | {readings:,.0f} | {msgs / yardstick:.2f} |")


if __name__ == "__main__":
    main()
