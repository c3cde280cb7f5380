"""The native decoder: what is stored, and every kind of bad input with the reason a user sees."""

from __future__ import annotations

import pytest

from ingest.decode import Limits
from ingest.decode.native import NativeDecoder
from ingest.model import Reason

NOW_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
NOW = NOW_MS * 1_000_000
T = "citypilot/v1/lisbon/gw-1/aq-7/telemetry"
E = "citypilot/v1/lisbon/gw-1/kiosk-2/event"
S = "citypilot/v1/lisbon/gw-1/aq-7/status"
decode = NativeDecoder(Limits(max_payload_bytes=4096, max_future_s=300))


def test_telemetry_becomes_one_point_per_reading_with_identity_from_topic() -> None:
    out = decode(T, b'{"ts": %d, "kind": "air_quality", "values": {"pm25": 12.4, "no2": 31}}'
                 % (NOW_MS - 2000), NOW)
    assert out.rejections == []
    [p] = out.points
    assert p.measurement == "air_quality"
    assert p.tags == (("pilot", "lisbon"), ("gateway", "gw-1"), ("device", "aq-7"))
    assert p.fields == {"pm25": 12.4, "no2": 31.0, "ingest_delay_s": 2.0}
    assert p.ts == (NOW_MS - 2000) * 1_000_000


def test_payload_cannot_override_identity() -> None:
    out = decode(T, b'{"kind": "noise", "values": {"noise_laeq": 55}, "device": "other"}', NOW)
    assert [r.reason for r in out.rejections] == [Reason.BAD_SHAPE]
    assert out.points == []


def test_rfc3339_keeps_nanoseconds_and_offsets() -> None:
    out = decode(T, b'{"ts": "2025-11-24T17:59:59.123456789+02:00", "kind": "noise",'
                 b' "values": {"noise_laeq": 55.5}}', NOW)
    assert out.points[0].ts == (NOW_MS - 1000) * 1_000_000 + 123_456_789


def test_array_stores_good_elements_and_dead_letters_the_bad_one() -> None:
    out = decode(T, b'[{"ts": %d, "kind": "noise", "values": {"noise_laeq": 50}},'
                 b' {"ts": %d, "kind": "noise", "values": {"noise_laeq": 999}},'
                 b' {"ts": %d, "kind": "noise", "values": {"noise_laeq": 52}}]'
                 % (NOW_MS - 3, NOW_MS - 2, NOW_MS - 1), NOW)
    assert [p.fields["noise_laeq"] for p in out.points] == [50.0, 52.0]
    [rej] = out.rejections
    assert rej.reason == Reason.OUT_OF_RANGE
    assert rej.detail.startswith("element 1: noise_laeq=999")
    assert b"999" in rej.payload


def test_a_status_with_only_ts_is_a_heartbeat_with_its_delay() -> None:
    out = decode(S, b'{"ts": %d}' % (NOW_MS - 1500), NOW)
    assert out.rejections == []
    [p] = out.points
    assert p.measurement == "device_status"
    assert p.tags == (("pilot", "lisbon"), ("gateway", "gw-1"), ("device", "aq-7"))
    assert p.fields == {"ingest_delay_s": 1.5}
    assert p.ts == (NOW_MS - 1500) * 1_000_000
    # Without ts it is stamped at the collector, as any message without one.
    [now] = decode(S, b"{}", NOW).points
    assert now.fields == {"ingest_delay_s": 0.0} and now.ts == NOW


def test_event_and_status() -> None:
    ev = decode(E, b'{"ts": %d, "service": "kiosk", "type": "use", "user": "u-81f"}'
                % NOW_MS, NOW)
    [p] = ev.points
    assert p.measurement == "event"
    assert dict(p.tags)["service"] == "kiosk" and dict(p.tags)["type"] == "use"
    assert p.fields["user"] == "u-81f" and p.fields["value"] == 1.0
    st = decode(S, b'{"ts": %d, "state": "online", "battery": 0.81, "rssi": -71}' % NOW_MS, NOW)
    assert st.points[0].measurement == "device_status"
    assert st.points[0].fields == {"state": "online", "battery": 0.81, "rssi": -71.0}


def test_an_event_alone_or_in_any_array_is_the_same_point() -> None:
    one = b'{"ts": %d, "service": "bikes", "type": "use", "user": "a"}' % NOW_MS
    other = b'{"ts": %d, "service": "bikes", "type": "use", "user": "b"}' % NOW_MS
    respaced = b'{"user":"a","type":"use","service":"bikes","ts":%d}' % NOW_MS
    ways = [one, b"[" + one + b"]", b"[" + one + b", " + other + b"]",
            b"[" + other + b"," + one + b"]", respaced]
    found = [p for payload in ways for p in decode(E, payload, NOW).points
             if p.fields["user"] == "a"]
    assert len(found) == len(ways)
    assert {(p.ts, p.tags) for p in found} == {(found[0].ts, found[0].tags)}
    assert found[0].ts // 1_000_000 == NOW_MS


def test_two_events_in_one_millisecond_stay_two_points_and_redelivery_is_the_same() -> None:
    a = b'{"ts": %d, "service": "bikes", "type": "use", "user": "a"}' % NOW_MS
    b = b'{"ts": %d, "service": "bikes", "type": "use", "user": "b"}' % NOW_MS
    ta, tb = decode(E, a, NOW).points[0].ts, decode(E, b, NOW).points[0].ts
    assert ta != tb
    assert ta // 1_000_000 == tb // 1_000_000 == NOW_MS
    assert decode(E, a, NOW + 5 * 10**9).points[0].ts == ta


def test_unknown_metric_is_stored_and_counted() -> None:
    out = decode(T, b'{"kind": "soil", "values": {"soil_moisture": 0.3}}', NOW)
    assert out.points[0].fields["soil_moisture"] == 0.3
    assert out.unknown_metrics == ["soil_moisture"]


BAD: list[tuple[str, str, bytes, Reason]] = [
    ("bad json", T, b'{"kind": "noise", "values": {', Reason.BAD_JSON),
    ("not an object", T, b'"hello"', Reason.BAD_SHAPE),
    ("empty array", T, b"[]", Reason.EMPTY),
    ("value is a string", T, b'{"kind": "noise", "values": {"noise_laeq": "55"}}',
     Reason.BAD_SHAPE),
    ("value is a bool", T, b'{"kind": "noise", "values": {"noise_laeq": true}}',
     Reason.BAD_SHAPE),
    ("values nested", T, b'{"kind": "noise", "values": {"noise_laeq": {"a": 1}}}',
     Reason.BAD_SHAPE),
    ("NaN literal", T, b'{"kind": "noise", "values": {"noise_laeq": NaN}}', Reason.NOT_FINITE),
    ("Infinity by overflow", T, b'{"kind": "noise", "values": {"x": 1e999}}',
     Reason.NOT_FINITE),
    ("invalid utf-8", T, b'{"kind": "noise\xff", "values": {"x": 1}}', Reason.BAD_ENCODING),
    ("deep nesting", T, b"[" * 1500 + b"]" * 1500, Reason.BAD_JSON),
    ("oversized", T, b'{"kind": "noise", "values": {"x": 1}, "pad": "' + b"a" * 5000 + b'"}',
     Reason.TOO_LARGE),
    ("far future", T, b'{"ts": %d, "kind": "noise", "values": {"x": 1}}'
     % (NOW_MS + 3_600_000), Reason.FUTURE_TIMESTAMP),
    ("unset clock", T, b'{"ts": 1000, "kind": "noise", "values": {"x": 1}}',
     Reason.BAD_TIMESTAMP),
    ("zoneless time", T, b'{"ts": "2025-11-24T16:00:00", "kind": "noise", "values": {"x": 1}}',
     Reason.BAD_TIMESTAMP),
    ("injection in kind", T, b'{"kind": "noise,pilot=evil x=1", "values": {"x": 1}}',
     Reason.BAD_NAME),
    ("injection in value name", T, b'{"kind": "noise", "values": {"x=1 y": 1}}',
     Reason.BAD_NAME),
    ("newline in kind", T, b'{"kind": "noise\\nevil", "values": {"x": 1}}', Reason.BAD_NAME),
    ("reserved kind", T, b'{"kind": "dead_letter", "values": {"x": 1}}', Reason.BAD_NAME),
    ("reserved value", T, b'{"kind": "noise", "values": {"ingest_delay_s": 1}}',
     Reason.BAD_NAME),
    ("out of range", T, b'{"kind": "air_quality", "values": {"pm25": -4}}',
     Reason.OUT_OF_RANGE),
    ("no values", T, b'{"kind": "noise", "values": {}}', Reason.BAD_SHAPE),
    ("unknown channel", "citypilot/v1/lisbon/gw-1/aq-7/command", b"{}",
     Reason.UNKNOWN_CHANNEL),
    ("bad topic id", "citypilot/v1/lis bon/gw-1/aq-7/telemetry", b"{}", Reason.BAD_TOPIC),
    ("short topic", "citypilot/v1/lisbon/telemetry", b"{}", Reason.BAD_TOPIC),
    ("event type", E, b'{"service": "kiosk", "type": "hack"}', Reason.BAD_SHAPE),
    ("battery percent", S, b'{"battery": 81}', Reason.OUT_OF_RANGE),
]


@pytest.mark.parametrize(("topic", "payload", "reason"), [c[1:] for c in BAD],
                         ids=[c[0] for c in BAD])
def test_bad_input_is_a_dead_letter_with_its_reason(topic: str, payload: bytes,
                                                    reason: Reason) -> None:
    out = decode(topic, payload, NOW)
    assert out.points == []
    assert [r.reason for r in out.rejections] == [reason], out.rejections
    assert out.rejections[0].detail
