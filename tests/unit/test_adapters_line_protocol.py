"""The InfluxDB line protocol adapter (as Telegraf publishes it): batches, escapes, types,
bad lines."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.decode.adapter import Adapter
from ingest.model import Reason
from tests.adapters import adapter, point, rejections


def lp(**options: Any) -> Adapter:
    return adapter("influx-lp", "telegraf", "telegraf/#", **options)


def test_line_protocol_batch_with_one_bad_line() -> None:
    payload = (b"weather,host=st1 temperature=21.5 1700000000000000000\n"
               b"weather,host=st2 temperature=21.5,humidity= 1700000000000000000\n"
               b"# a comment\n\n"
               b"weather,host=st3 humidity=55i 1700000000000000000\n")
    decoded = lp()("telegraf/st/weather", payload, 1_700_000_001_000_000_000)
    assert [p.tag("device") for p in decoded.points] == ["st1", "st3"]
    assert rejections(decoded) == [(Reason.UNDECODABLE, "line 2: column 44: empty field value")]
    assert decoded.rejections[0].payload == (b"weather,host=st2 temperature=21.5,humidity= "
                                             b"1700000000000000000")


def test_line_protocol_escapes_types_and_nanoseconds() -> None:
    payload = (rb'air\ quality,host=kiosk\,7,site=a\=b pm2.5=12.5,no2=31i,count=7u,'
               rb'ok=T,bad=false,note="say \"hi\" \\ bye",co2=4.2e2 1700000000123456789')
    adapter_ = lp()
    decoded = adapter_("telegraf/kiosk/air", payload, 1_700_000_000_623_456_789)
    assert decoded.points == [point(
        "air_quality", "telegraf", "kiosk_7", 1_700_000_000_123_456_789,
        pm25=12.5, no2=31.0, count=7.0, ok=1.0, bad=0.0, co2=420.0,
        ingest_delay_s=0.5, time_source="device")]
    assert adapter_.dropped_fields == {"note": 1}  # strings are counted, not stored


def test_line_protocol_without_timestamp_takes_the_receive_time() -> None:
    decoded = lp()("telegraf/h/cpu", b"cpu,host=h usage_idle=99.5", 1_700_000_000_000_000_001)
    assert decoded.points == [point("cpu", "telegraf", "h", 1_700_000_000_000_000_001,
                                    usage_idle=99.5, ingest_delay_s=0.0,
                                    time_source="received")]


@pytest.mark.parametrize(("line", "reason"), [
    (b"event,host=h value=1 1700000000000000000", Reason.BAD_NAME),
    (b"m,host=h x=1 99999999999999999999", Reason.UNDECODABLE),
    (b"m,host=h x=-1u", Reason.UNDECODABLE),
    (b"m,host=h x=9223372036854775808i", Reason.UNDECODABLE),
    (b'm,host=h x="unterminated', Reason.UNDECODABLE),
    (b"m,host=h x=1,x=2", Reason.UNDECODABLE),
    (b"m,host=h,host=i x=1", Reason.UNDECODABLE),
    (b"m,host=h x=1 17 18", Reason.UNDECODABLE),
    (b"m,location=x x=1", Reason.BAD_SHAPE),
    (b"m,host=h x=1e999", Reason.NOT_FINITE),
    (b"m,host=h x=1 946684799999999999", Reason.BAD_TIMESTAMP),
    (b"m,host=h x=1 1800000000000000000", Reason.FUTURE_TIMESTAMP),
    (b"m,host=h", Reason.UNDECODABLE),
    (b"\xff\xfe", Reason.BAD_ENCODING),
])
def test_line_protocol_bad_lines(line: bytes, reason: Reason) -> None:
    decoded = lp()("telegraf/h/m", line, 1_700_000_000_000_000_000)
    assert [r.reason for r in decoded.rejections] == [reason]
