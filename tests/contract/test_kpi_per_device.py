"""A KPI per device (the inventory's availability and completeness) is the KPI's own code on
one device: over one sensor, the mean over sensors is that sensor's share, so the per-device
values average to the pilot's value."""

from __future__ import annotations

import pytest

from api.kpis.periods import Grain
from api.kpis.service import KpiRequestError, compute, per_device
from ingest.stores.base import Reader
from tests.contract.test_kpis import GROWING, NOW, D, T, grown  # noqa: F401 (a fixture)

KEYS = [("g1", d.id) for d in GROWING.devices]


async def test_per_device_values_are_each_sensors_share(grown: Reader) -> None:  # noqa: F811
    values = await per_device(grown, GROWING, ["availability", "data_completeness"], KEYS,
                              T, T + 7 * D, now_ns=NOW)
    availability = {k[1]: values[k]["availability"].value for k in KEYS}
    # As in test_sensors_count_from_their_installation: dated 60 of its 96 hours, heard all
    # of its 114, late and ghost none.
    assert availability == pytest.approx({"dated": 100 * 60 / 96, "heard": 100.0,
                                          "late": 0.0, "ghost": 0.0})
    [week] = (await compute(grown, GROWING, "availability", T, T + 7 * D, Grain.WEEK,
                            now_ns=NOW)).values
    assert week.value == pytest.approx(sum(availability.values()) / len(availability))
    completeness = {k[1]: values[k]["data_completeness"].value for k in KEYS}
    assert completeness == pytest.approx({"dated": 100 * 60 / 96, "heard": 100.0,
                                          "late": 0.0, "ghost": 0.0})
    # A device seen in no data and not registered: no sensors, a null with its reason.
    [none] = (await per_device(grown, GROWING, ["availability"], [("g1", "nobody")], T,
                               T + 7 * D, now_ns=NOW)).values()
    assert none["availability"].value is None and none["availability"].reason


async def test_a_kpi_without_a_value_per_device_is_refused(grown: Reader) -> None:  # noqa: F811
    with pytest.raises(KpiRequestError, match=r"no per-device value.*availability"):
        await per_device(grown, GROWING, ["usage_events"], KEYS, T, T + 7 * D, now_ns=NOW)
