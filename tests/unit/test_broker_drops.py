"""The broker's drop count as the collector reads it from `$SYS`."""

from __future__ import annotations

import logging

import pytest

from ingest.mqtt.drops import DROPPED_TOPIC, BrokerDrops, fatal_refusals


def test_growth_is_counted_and_warned_about_with_the_setting_to_change(
        caplog: pytest.LogCaptureFixture) -> None:
    drops = BrokerDrops("mqtt://broker:1883")
    assert drops.total is None  # unknown until the broker published it
    with caplog.at_level(logging.WARNING, logger="ingest.mqtt.drops"):
        assert drops.observe(b"0") == 0
        assert not caplog.records
        assert drops.observe(b"2000") == 2000
        assert drops.observe(b"2000") == 0
        assert drops.observe(b"2500") == 500
    assert drops.total == 2500
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert "dropped 500 messages (2500 since it started)" in warnings[1]
    assert all("max_queued_messages" in w and "mqtt://broker:1883" in w for w in warnings)


def test_drops_before_the_collector_came_are_warned_about_at_first_sight(
        caplog: pytest.LogCaptureFixture) -> None:
    drops = BrokerDrops("mqtt://b:1883")
    with caplog.at_level(logging.WARNING, logger="ingest.mqtt.drops"):
        assert drops.observe(b"1234") == 1234
    assert "dropped 1234 messages" in caplog.records[0].getMessage()


def test_a_restarted_broker_counts_from_zero_and_its_new_drops_count() -> None:
    drops = BrokerDrops("mqtt://b:1883")
    drops.observe(b"900")
    assert drops.observe(b"3") == 3
    assert drops.total == 3
    assert drops.observe(b"10") == 7


def test_a_payload_that_is_no_count_keeps_the_last_total(caplog: pytest.LogCaptureFixture) -> None:
    drops = BrokerDrops("mqtt://b:1883")
    drops.observe(b"5")
    assert drops.observe(b"five") == 0
    assert drops.total == 5
    assert "not a count" in caplog.records[-1].getMessage()


def test_only_a_refused_sys_subscription_is_tolerated(caplog: pytest.LogCaptureFixture) -> None:
    assert fatal_refusals([]) == []
    assert fatal_refusals([DROPPED_TOPIC]) == []
    assert f"topic read {DROPPED_TOPIC}" in caplog.records[-1].getMessage()
    assert fatal_refusals(["citypilot/v1/#", DROPPED_TOPIC]) == ["citypilot/v1/#"]
